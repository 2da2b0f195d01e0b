package stream

import "sync"

// Shared memoizes the encodings of one event that many subscribers receive: at the
// live edge every subscriber of a series is at the same cursor, so the bars of a write
// reach them all as the same event, and a transport that encodes it once (per wire
// format) writes the same bytes to every connection instead of encoding it once per
// subscriber. The zero value is ready to use; it is safe for concurrent use.
type Shared struct {
	mu  sync.Mutex
	enc map[string]encoding
}

type encoding struct {
	data []byte
	err  error
}

// Encoding returns the encoding named key (a wire format), made by encode on the first
// call for that key; later calls, from any goroutine, return the same bytes (or
// error) without calling encode. Callers must not modify the bytes. Calls for a key
// whose encoding is being made wait for it.
func (s *Shared) Encoding(key string, encode func() ([]byte, error)) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.enc[key]; ok {
		return e.data, e.err
	}
	data, err := encode()
	if s.enc == nil {
		s.enc = map[string]encoding{}
	}
	s.enc[key] = encoding{data, err}
	return data, err
}
