package toolvm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// ToolError is a tool that ran and failed: its exit status and what it
// printed.
type ToolError struct {
	Tool   string // the command as run, e.g. "xl create"
	Status int    // exit status; -1 when killed by a signal
	Output string // stdout and stderr, trimmed
}

func (e *ToolError) Error() string {
	msg := fmt.Sprintf("%s: exit status %d", e.Tool, e.Status)
	if e.Output != "" {
		msg += ": " + oneLine(e.Output, 600)
	}
	return msg
}

// oneLine joins the lines of s with "; " and clips it to n bytes.
func oneLine(s string, n int) string {
	var parts []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	s = strings.Join(parts, "; ")
	if len(s) > n {
		s = s[:n] + "..."
	}
	return s
}

// Run runs bin with args and returns its standard output. A tool that
// exits non-zero gives a *ToolError carrying its output; a tool that
// cannot be started, or a ctx that ends, gives an error wrapping the cause.
func Run(ctx context.Context, bin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	// Name the command by its first words ("xl create", "vmrun -T ws
	// start"), which say what failed.
	name := strings.Join(append([]string{bin}, args[:min(len(args), 3)]...), " ")
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name = bin + " " + args[0]
	}
	if err == nil {
		return stdout.String(), nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return "", fmt.Errorf("%s: %w", name, ctxErr)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		out := strings.TrimSpace(stderr.String())
		if o := strings.TrimSpace(stdout.String()); o != "" {
			out = strings.TrimSpace(o + "\n" + out)
		}
		return stdout.String(), &ToolError{Tool: name, Status: ee.ExitCode(), Output: out}
	}
	return "", fmt.Errorf("%s: %w", name, err)
}
