// Command importgroups checks that Go files group their imports as STYLE.md asks:
// standard library, then third-party, then this module's own packages, each in one
// group, groups separated by a blank line. It prints every file that breaks the rule
// with the line and the reason, and exits 1 if there was any.
//
//	go run ./internal/tools/importgroups -local github.com/seamless-data/seamless $(git ls-files '*.go')
//
// goimports -local sorts imports within a group and puts a new import in the right
// group, but it leaves an existing block alone when its groups are already sorted:
// a standard-library group split in two, or third-party imports inside the standard
// group, pass `goimports -l`. This checker is what catches those; CI runs both.
package main

import (
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
)

func main() {
	local := flag.String("local", "github.com/seamless-data/seamless", "import path prefix of this module's own packages")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: importgroups [-local prefix] file.go...")
		flag.PrintDefaults()
	}
	flag.Parse()
	bad := false
	for _, path := range flag.Args() {
		src, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		problems, err := Check(path, src, *local)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		for _, p := range problems {
			fmt.Println(p)
			bad = true
		}
	}
	if bad {
		os.Exit(1)
	}
}

// class is an import's group, in the order the groups must appear.
type class int

const (
	stdlib class = iota
	thirdParty
	ours
)

func (c class) String() string {
	return [...]string{"standard-library", "third-party", "own-module"}[c]
}

func classify(path, local string) class {
	switch {
	case path == local || strings.HasPrefix(path, local+"/"):
		return ours
	case !strings.Contains(strings.SplitN(path, "/", 2)[0], "."):
		// goimports' rule: a first path element without a dot is the standard library.
		return stdlib
	}
	return thirdParty
}

// Check returns the grouping problems of one file's imports, each "file:line: reason".
func Check(filename string, src []byte, local string) ([]string, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, filename, src, parser.ImportsOnly|parser.ParseComments)
	if err != nil {
		return nil, err
	}
	type group struct {
		class class
		line  int
	}
	var (
		groups   []group
		problems []string
		prevEnd  = -1 // line of the previous import's end; -1 before the first
		prevDecl *ast.GenDecl
	)
	report := func(line int, format string, args ...any) {
		problems = append(problems, fmt.Sprintf("%s:%d: %s", filename, line, fmt.Sprintf(format, args...)))
	}
	for _, d := range f.Decls {
		decl, ok := d.(*ast.GenDecl)
		if !ok || decl.Tok != token.IMPORT {
			continue
		}
		for _, s := range decl.Specs {
			spec := s.(*ast.ImportSpec)
			path, err := strconv.Unquote(spec.Path.Value)
			if err != nil || path == "C" { // cgo's import "C" stands alone by rule
				continue
			}
			start := spec.Pos()
			if spec.Doc != nil {
				start = spec.Doc.Pos()
			}
			line, c := fset.Position(start).Line, classify(path, local)
			// A blank line, or a separate import declaration, starts a new group.
			if decl != prevDecl || line > prevEnd+1 {
				groups = append(groups, group{class: c, line: line})
			} else if g := &groups[len(groups)-1]; g.class != c {
				report(line, "%s import %q in a group of %s imports", c, path, g.class)
			}
			prevEnd, prevDecl = fset.Position(spec.End()).Line, decl
		}
	}
	for i := 1; i < len(groups); i++ {
		prev, g := groups[i-1], groups[i]
		switch {
		case g.class == prev.class:
			report(g.line, "%s imports split across groups (the group at line %d is one too)", g.class, prev.line)
		case g.class < prev.class:
			report(g.line, "%s imports after %s imports (want standard library, third-party, own module)", g.class, prev.class)
		}
	}
	return problems, nil
}
