package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/moatmail/moat/internal/store"
)

func newBackupCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "backup FILE",
		Short: "Write a consistent copy of the SQLite database to FILE, also while moat serve runs and writes",
		Long: `Write a consistent copy of the SQLite database to FILE (which must not exist),
also while moat serve runs and writes: the copy is what was committed when it
began, checked before it is put in place. PostgreSQL is backed up with pg_dump
(see the README).`,
		Args: nArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.open(cmd)
			if err != nil {
				return err
			}
			defer s.close()
			if err := s.st.Backup(cmd.Context(), args[0]); err != nil {
				if errors.Is(err, store.ErrUnsupported) {
					return errors.New("moat backup copies the SQLite database; back PostgreSQL up with pg_dump (see the README)")
				}
				return err
			}
			info, err := store.CheckDatabase(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(g.stdout, map[string]any{"file": args[0], "schema_version": info.SchemaVersion,
					"domains": info.Domains, "reports": info.Reports, "orgs": info.Orgs})
			}
			fmt.Fprintf(g.stdout, "backed up to %s: schema %d, %d organizations, %d domains, %d reports\n",
				args[0], info.SchemaVersion, info.Orgs, info.Domains, info.Reports)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newRestoreCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "restore FILE",
		Short: "Check a backup and put it in place as the SQLite database (moat serve must be stopped)",
		Long: `Check FILE (an SQLite database made by moat backup: its integrity and a schema
this Moat knows) and put it in place as the database of the data directory. The
database it replaces is kept beside it as moat.db.replaced-<time>. moat serve
must be stopped; restore refuses while it runs on the data directory.`,
		Args: nArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.loadConfig(cmd)
			if err != nil {
				return err
			}
			if c.Database != "" {
				return errors.New("moat restore puts back an SQLite database; restore PostgreSQL with pg_restore (see the README)")
			}
			info, err := store.Restore(cmd.Context(), c.DataDir, args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(g.stdout, map[string]any{"file": args[0], "data": c.DataDir, "schema_version": info.SchemaVersion,
					"domains": info.Domains, "reports": info.Reports, "orgs": info.Orgs})
			}
			fmt.Fprintf(g.stdout, "restored %s into %s: schema %d, %d organizations, %d domains, %d reports (the next open migrates it when older)\n",
				args[0], c.DataDir, info.SchemaVersion, info.Orgs, info.Domains, info.Reports)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newMigrateCmd(g *globals) *cobra.Command {
	var dryRun, asJSON bool
	cmd := &cobra.Command{
		Use:   "migrate [--dry-run]",
		Short: "Apply the pending schema migrations (--dry-run: list them)",
		Long: `Apply the schema migrations the database lacks, or with --dry-run only list
them. moat serve and the other commands also migrate when they open the
database; this runs it on its own, before a rolling upgrade for example.`,
		Args: nArgs(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.loadConfig(cmd)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			opts := store.Options{DataDir: c.DataDir, URL: c.Database}
			before, err := store.MigrationStatus(ctx, nil, opts)
			if err != nil {
				return err
			}
			var pending []string
			for _, m := range before {
				if !m.Applied {
					pending = append(pending, m.Name)
				}
			}
			if !dryRun && len(pending) > 0 {
				st, err := openStore(ctx, g.logger(c), c)
				if err != nil {
					return err
				}
				if err := st.Close(); err != nil {
					return err
				}
			}
			if asJSON {
				return printJSON(g.stdout, map[string]any{"pending": nonNil(pending), "applied": !dryRun && len(pending) > 0})
			}
			switch {
			case len(pending) == 0:
				fmt.Fprintln(g.stdout, "the schema is up to date")
			case dryRun:
				fmt.Fprintf(g.stdout, "%d migrations to apply: %s\n", len(pending), strings.Join(pending, ", "))
			default:
				fmt.Fprintf(g.stdout, "applied %d migrations: %s\n", len(pending), strings.Join(pending, ", "))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "list the pending migrations without applying them")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
