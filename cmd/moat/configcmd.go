package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	yaml "go.yaml.in/yaml/v3"

	"github.com/moatmail/moat/internal/config"
)

func newConfigCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Show and check the configuration",
	}
	var asJSON bool
	show := &cobra.Command{
		Use:   "show",
		Short: "Print the effective configuration (defaults, file, environment, flags) after validation",
		Args:  nArgs(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.loadConfig(cmd)
			if err != nil {
				return err
			}
			shown := *c
			shown.Database = c.Redacted()
			shown.Intake.IMAP = c.RedactedIMAP()
			if asJSON {
				return printJSON(g.stdout, shown)
			}
			out, err := yaml.Marshal(shown)
			if err != nil {
				return err
			}
			_, err = g.stdout.Write(out)
			return err
		},
	}
	show.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	var write string
	ref := &cobra.Command{
		Use:   "reference [--write FILE]",
		Short: "Print the configuration reference (Markdown) generated from the schema",
		Long: `Print the configuration reference (Markdown) generated from the schema. With
--write FILE, replace the text between the lines "<!-- config-reference:begin -->"
and "<!-- config-reference:end -->" of FILE with it (make gen does this to README.md).`,
		Args: nArgs(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if write == "" {
				_, err := fmt.Fprint(g.stdout, config.Reference())
				return err
			}
			return replaceBetween(write, "<!-- config-reference:begin -->\n", "<!-- config-reference:end -->", config.Reference())
		},
	}
	ref.Flags().StringVar(&write, "write", "", "update the reference inside this Markdown file")
	cmd.AddCommand(show, ref)
	return cmd
}

// replaceBetween replaces the text between the begin and end markers of
// the file at path with text.
func replaceBetween(path, begin, end, text string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(data)
	i := strings.Index(s, begin)
	j := strings.Index(s, end)
	if i < 0 || j < i {
		return fmt.Errorf("%s: markers %q and %q not found in order", path, strings.TrimSpace(begin), end)
	}
	out := s[:i+len(begin)] + text + s[j:]
	return os.WriteFile(path, []byte(out), 0o644) //nolint:gosec // the README is a public document
}
