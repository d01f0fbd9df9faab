package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/vmpool/vmpool/vmimage"
)

// config prints the effective configuration, or one knob's value
// (condor_config_val NAME).
func (c *cli) config(ctx context.Context, args []string) int {
	var df daemonFlags
	var names []string
	verbose := false
	var rest []string
	for _, a := range args {
		if n, _, _, ok := opt(a); ok && (n == "v" || n == "verbose") {
			verbose = true
			continue
		}
		if _, _, _, ok := opt(a); !ok {
			names = append(names, a)
			continue
		}
		rest = append(rest, a)
	}
	if code := c.parseDaemonFlags("config", rest, &df); code >= 0 {
		return code
	}
	cfg, err := c.loadConfig(&df)
	if err != nil {
		return c.errorf("config", "%v", err)
	}
	if len(names) == 0 {
		for _, k := range Knobs {
			fmt.Fprintf(c.stdout, "%s = %s\n", k.Name, cfg.Get(k.Name))
			if verbose {
				fmt.Fprintf(c.stdout, "  # from %s; %s\n", cfg.Origin(k.Name), k.Doc)
			}
		}
		return 0
	}
	code := 0
	for _, n := range names {
		if !cfg.Has(n) {
			fmt.Fprintf(c.stderr, "Not defined: %s\n", strings.ToUpper(n))
			code = 1
			continue
		}
		fmt.Fprintln(c.stdout, cfg.Get(n))
		if verbose {
			fmt.Fprintf(c.stdout, "  # from %s\n", cfg.Origin(n))
		}
	}
	return code
}

// image writes the example guest images: vmpool image hello FILE.
func (c *cli) image(ctx context.Context, args []string) int {
	if len(args) != 2 || args[0] != "hello" {
		return c.usageErr("image", "usage: vmpool image hello FILE   (a 1 MiB boot-sector guest that counts its boots on its disk and powers off)")
	}
	path, _ := filepath.Abs(args[1])
	if err := vmimage.WriteHello(path); err != nil {
		return c.errorf("image", "%v", err)
	}
	fmt.Fprintf(c.stdout, "wrote %s\n", path)
	return 0
}
