package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// links is `vmpool links DIR`: it makes the HTCondor command names
// (condor_submit, condor_q, ...; see condorNames) symbolic links to this
// binary in DIR, which then behaves as the command it is called by. An
// existing link to the same binary is kept; anything else by that name is
// left alone and reported, unless --force replaces it.
//
//	vmpool links [--force] [--target PATH] DIR
func (c *cli) links(ctx context.Context, args []string) int {
	const cmd = "links"
	var dir, target string
	force := false
	a := &argList{args: args, cmd: cmd}
	for {
		arg, ok := a.next()
		if !ok {
			break
		}
		name, val, has, isOpt := opt(arg)
		if !isOpt {
			if dir != "" {
				return c.usageErr(cmd, "more than one directory (%s and %s)", dir, arg)
			}
			dir = arg
			continue
		}
		switch name {
		case "force", "f":
			force = true
		case "target":
			target = a.value(name, val, has)
		case "h", "help":
			fmt.Fprintf(c.stdout, `usage: vmpool links [--force] [--target PATH] DIR

Makes these names in DIR symbolic links to this vmpool binary (or --target),
which behaves as the HTCondor command it is called by:
%s
Put DIR on your PATH. An existing link to the same binary is kept; --force
replaces other files of those names.
`, wrapNames(linkNames()))
			return 0
		default:
			return c.usageErr(cmd, "unknown option %s (try --help)", arg)
		}
		if a.err != nil {
			return c.usageErr(cmd, "%v", a.err)
		}
	}
	if dir == "" {
		return c.usageErr(cmd, "name the directory for the links: vmpool links DIR (e.g. ~/bin)")
	}
	if target == "" {
		exe, err := os.Executable()
		if err != nil {
			return c.errorf(cmd, "find the vmpool binary (give it with --target): %v", err)
		}
		target = exe
	}
	target, err := filepath.Abs(target)
	if err != nil {
		return c.errorf(cmd, "%v", err)
	}
	if resolved, err := filepath.EvalSymlinks(target); err == nil {
		target = resolved // a link to the binary itself, not to another link
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return c.errorf(cmd, "create %s: %v", dir, err)
	}
	made, kept, code := 0, 0, 0
	for _, name := range linkNames() {
		path := filepath.Join(dir, name)
		switch done, err := placeLink(path, target, force); {
		case err != nil:
			fmt.Fprintf(c.stderr, "vmpool links: %v\n", err)
			code = 1
		case done:
			made++
		default:
			kept++
		}
	}
	fmt.Fprintf(c.stdout, "%d link(s) made, %d already there in %s, to %s\n", made, kept, dir, target)
	if code != 0 {
		fmt.Fprintln(c.stderr, "vmpool links: some names are taken by other files; --force replaces them")
	}
	return code
}

// placeLink makes path a symbolic link to target. It reports false when
// the link was already there.
func placeLink(path, target string, force bool) (bool, error) {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return false, fmt.Errorf("link %s: %w", path, err)
	case fi.Mode()&os.ModeSymlink != 0:
		if cur, err := os.Readlink(path); err == nil && cur == target {
			return false, nil
		}
		fallthrough
	default:
		if !force {
			return false, fmt.Errorf("%s exists and is not a link to %s; remove it or use --force", path, target)
		}
		if fi.IsDir() {
			return false, fmt.Errorf("%s is a directory; not replacing it", path)
		}
		if err := os.Remove(path); err != nil {
			return false, fmt.Errorf("replace %s: %w", path, err)
		}
	}
	if err := os.Symlink(target, path); err != nil {
		return false, fmt.Errorf("link %s: %w", path, err)
	}
	return true, nil
}

// linkNames are the HTCondor command names the binary answers to, sorted.
func linkNames() []string {
	names := make([]string, 0, len(condorNames))
	for n := range condorNames {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// wrapNames lists names, indented, a few a line.
func wrapNames(names []string) string {
	var b strings.Builder
	for i, n := range names {
		if i%4 == 0 {
			b.WriteString("\n ")
		}
		b.WriteString(" " + n)
	}
	return b.String()[1:]
}
