package cli

import (
	"errors"
	"fmt"
)

// closerStack closes a process's parts in the reverse of the order they were opened.
// Each part is pushed right after it opens, so whatever uses a part (the live tier its
// store, the provider everything) was opened later and is closed first, and a failed
// assembly closes exactly what it had opened. The order is the stack's, not a matter
// of where lines happen to sit.
type closerStack struct {
	parts []closer
}

type closer struct {
	name  string
	close func() error
}

// push adds the part called name, closed by fn.
func (s *closerStack) push(name string, fn func() error) {
	s.parts = append(s.parts, closer{name, fn})
}

// names lists the parts in closing order.
func (s *closerStack) names() []string {
	out := make([]string, 0, len(s.parts))
	for i := len(s.parts) - 1; i >= 0; i-- {
		out = append(out, s.parts[i].name)
	}
	return out
}

// close closes every part, newest first, even when some fail, and returns their
// errors joined, each naming its part. The stack is empty afterwards, so a second
// close does nothing.
func (s *closerStack) close() error {
	var errs []error
	for i := len(s.parts) - 1; i >= 0; i-- {
		if err := s.parts[i].close(); err != nil {
			errs = append(errs, fmt.Errorf("close %s: %w", s.parts[i].name, err))
		}
	}
	s.parts = nil
	return errors.Join(errs...)
}
