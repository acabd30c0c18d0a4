package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/moatmail/moat/internal/config"
	"github.com/moatmail/moat/internal/hosting"
	"github.com/moatmail/moat/internal/server"
	"github.com/moatmail/moat/internal/store"
)

// globals is the state every command shares: where to write, and the
// flags of the configuration schema.
type globals struct {
	stdout, stderr io.Writer
	configFile     string
}

// isPersistent reports whether a schema flag is taken by every command;
// the others belong to `moat serve`.
func isPersistent(name string) bool {
	switch name {
	case "data", "database", "dev", "zone", "policy-host", "log-level", "log-format":
		return true
	}
	return false
}

func (g *globals) register(root *cobra.Command) {
	fs := root.PersistentFlags()
	fs.StringVar(&g.configFile, "config", "", "YAML configuration file (also MOAT_CONFIG)")
	addSchemaFlags(fs, isPersistent)
}

// addSchemaFlags defines the schema flags selected by keep on fs. Their
// defaults are shown in the help but applied by config.Load, which only
// sees flags the user set.
func addSchemaFlags(fs *pflag.FlagSet, keep func(string) bool) {
	for _, f := range config.Fields() {
		if f.Flag == "" || !keep(f.Flag) {
			continue
		}
		usage := f.Doc
		if f.Env != "" {
			usage += " (" + f.Env + ")"
		}
		if f.Bool {
			fs.Bool(f.Flag, false, usage)
			continue
		}
		def := f.Default
		if f.DevDef != f.Default {
			usage += fmt.Sprintf(" (--dev default %q)", f.DevDef)
		}
		fs.String(f.Flag, def, usage)
	}
}

// loadConfig builds the configuration from the file, the environment and
// the flags the user set on cmd (its own and the inherited ones).
func (g *globals) loadConfig(cmd *cobra.Command) (*config.Config, error) {
	src := config.Source{File: g.configFile, Environ: os.Environ(), Flags: map[string]string{}}
	if src.File == "" {
		src.File = os.Getenv("MOAT_CONFIG")
	}
	schema := map[string]bool{}
	for _, f := range config.Fields() {
		schema[f.Flag] = f.Flag != ""
	}
	cmd.Flags().Visit(func(f *pflag.Flag) {
		if schema[f.Name] {
			src.Flags[f.Name] = f.Value.String()
		}
	})
	return config.Load(src)
}

// logger builds the process logger from the configuration.
func (g *globals) logger(c *config.Config) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Log.Level)) // validated by config
	opts := &slog.HandlerOptions{Level: level}
	if c.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(g.stderr, opts))
	}
	return slog.New(slog.NewTextHandler(g.stderr, opts))
}

// openStore opens the configured database. Its errors say which database
// could not be opened and why, without the driver's internals.
func openStore(ctx context.Context, log *slog.Logger, c *config.Config) (store.Store, error) {
	st, err := store.Open(ctx, log, store.Options{DataDir: c.DataDir, URL: c.Database})
	if err != nil {
		what := "the SQLite database in " + c.DataDir
		if c.Database != "" {
			what = "PostgreSQL"
			if u, perr := url.Parse(c.Database); perr == nil {
				what = "PostgreSQL at " + u.Host
				if db := strings.TrimPrefix(u.Path, "/"); db != "" {
					what += " (database " + db + ")"
				}
			}
		}
		return nil, &storeOpenError{what: what, err: err}
	}
	return st, nil
}

// session is what most data commands need: configuration, logger, store
// and the hosting service. close releases the store.
type session struct {
	cfg  *config.Config
	log  *slog.Logger
	st   store.Store
	host *hosting.Service
}

func (g *globals) open(cmd *cobra.Command) (*session, error) {
	ctx := cmd.Context()
	c, err := g.loadConfig(cmd)
	if err != nil {
		return nil, err
	}
	// Data commands log warnings only, so their output stays readable.
	log := g.logger(c)
	if c.Log.Level == "info" {
		log = slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	st, err := openStore(ctx, log, c)
	if err != nil {
		return nil, err
	}
	return &session{cfg: c, log: log, st: st, host: hosting.New(st, server.HostingSettings(c), nil)}, nil
}

// close releases the store; a failure (a last checkpoint that could not be
// written) is reported on stderr, after the command's own output.
func (s *session) close() {
	if err := s.st.Close(); err != nil {
		s.log.Warn("closing the database", "err", err)
	}
}

// printJSON writes v as indented JSON.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table writes aligned columns; the first row is the header.
func table(w io.Writer, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}
