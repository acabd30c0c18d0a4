package store

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// migrations holds one directory of goose SQL files per dialect. A schema
// change adds a file to both, with the same version number.
//
//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrations embed.FS

// migrate brings the schema of db up to date. locker, if not nil,
// serializes instances that start together so that only one applies each
// migration.
func migrate(ctx context.Context, log *slog.Logger, dia goose.Dialect, dir string, db *sql.DB, locker lock.SessionLocker) error {
	p, err := provider(log, dia, dir, db, locker)
	if err != nil {
		return err
	}
	res, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if len(res) > 0 {
		versions := make([]int64, len(res))
		for i, r := range res {
			versions[i] = r.Source.Version
		}
		log.Info("store: schema migrated", "database", dir, "applied", versions)
	}
	return nil
}

// provider is goose over the migrations of dir ("sqlite", "postgres").
func provider(log *slog.Logger, dia goose.Dialect, dir string, db *sql.DB, locker lock.SessionLocker) (*goose.Provider, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	fsys, err := fs.Sub(migrations, "migrations/"+dir)
	if err != nil {
		return nil, fmt.Errorf("migrations %s: %w", dir, err)
	}
	opts := []goose.ProviderOption{
		goose.WithDisableGlobalRegistry(true),
		goose.WithSlog(log),
		goose.WithVerbose(false), // one line below instead of goose's per-step lines
	}
	if locker != nil {
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider(dia, db, fsys, opts...)
	if err != nil {
		return nil, fmt.Errorf("migrations %s: %w", dir, err)
	}
	return p, nil
}
