package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/moatmail/moat/internal/config"
	"github.com/moatmail/moat/internal/server"
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
database; this runs it on its own, before a rolling upgrade for example.
An SQLite database made by a Moat older than retention is converted once to
auto_vacuum=INCREMENTAL with a VACUUM, which rewrites the file (it needs as
much free disk space, and writers wait until it is done).`,
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
			var converted bool
			if !dryRun {
				// Opening migrates; an SQLite database of an older Moat is
				// then converted to incremental vacuum, once.
				st, err := openStore(ctx, g.logger(c), c)
				if err != nil {
					return err
				}
				converted, err = st.EnableIncrementalVacuum(ctx)
				if cerr := st.Close(); err == nil {
					err = cerr
				}
				if err != nil {
					return err
				}
			}
			if asJSON {
				return printJSON(g.stdout, map[string]any{"pending": nonNil(pending), "applied": !dryRun && len(pending) > 0,
					"vacuum_converted": converted})
			}
			switch {
			case len(pending) == 0:
				fmt.Fprintln(g.stdout, "the schema is up to date")
			case dryRun:
				fmt.Fprintf(g.stdout, "%d migrations to apply: %s\n", len(pending), strings.Join(pending, ", "))
			default:
				fmt.Fprintf(g.stdout, "applied %d migrations: %s\n", len(pending), strings.Join(pending, ", "))
			}
			if converted {
				fmt.Fprintln(g.stdout, "converted the SQLite database to auto_vacuum=INCREMENTAL (VACUUM): retention now gives freed space back")
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "list the pending migrations without applying them")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newPruneCmd(g *globals) *cobra.Command {
	var dryRun, asJSON bool
	cmd := &cobra.Command{
		Use:   "prune [--dry-run]",
		Short: "Delete reports older than the retention periods (--dry-run: count them)",
		Long: `Delete what is older than the retention periods (retention.raw,
retention.reports, retention.rollups), or with --dry-run count it, and print
per table how many rows go. moat serve does the same daily on its leader; this
runs it now. Rows go in transactions of 1000, so intake goes on meanwhile. On
SQLite the space freed is given back to the file system; a database made by a
Moat older than retention is first converted with a VACUUM (once; it needs as
much free disk space as the database, and writers wait until it is done).`,
		Args: nArgs(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.open(cmd)
			if err != nil {
				return err
			}
			defer s.close()
			ctx := cmd.Context()
			r := server.Retention(s.cfg)
			var converted bool
			if !dryRun {
				if converted, err = s.st.EnableIncrementalVacuum(ctx); err != nil {
					return err
				}
			}
			res, err := s.st.Prune(ctx, r, store.PruneOptions{DryRun: dryRun})
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(g.stdout, map[string]any{"dry_run": dryRun, "counts": res.Counts,
					"reclaimed_bytes": res.Reclaimed, "vacuum_converted": converted})
			}
			if converted {
				fmt.Fprintln(g.stdout, "converted the SQLite database to auto_vacuum=INCREMENTAL (VACUUM)")
			}
			if r == (store.Retention{}) {
				fmt.Fprintln(g.stdout, "every retention period is 0 (keep forever): only expired sign-in sessions and invitations are pruned")
			}
			for _, c := range res.Counts {
				verb := map[string]string{store.ActionDelete: "deleted", store.ActionClearRaw: "raw bytes cleared"}[c.Action]
				if dryRun {
					verb = map[string]string{store.ActionDelete: "would be deleted", store.ActionClearRaw: "raw bytes would be cleared"}[c.Action]
				}
				why := fmt.Sprintf("older than %s, %s %s", c.Before.Format("2006-01-02 15:04 UTC"), c.Setting, config.Period(periodOf(r, c.Setting)))
				if c.Setting == store.SettingExpired {
					why = "expired before " + c.Before.Format("2006-01-02 15:04 UTC")
				}
				fmt.Fprintf(g.stdout, "%-16s %9d rows %s (%s)\n", c.Table, c.Rows, verb, why)
			}
			if res.Reclaimed > 0 {
				fmt.Fprintf(g.stdout, "%d bytes given back to the file system\n", res.Reclaimed)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "count what would be deleted without deleting it")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// periodOf is the period of a retention setting.
func periodOf(r store.Retention, setting string) time.Duration {
	switch setting {
	case store.SettingRaw:
		return r.Raw
	case store.SettingReports:
		return r.Reports
	}
	return r.Rollups
}
