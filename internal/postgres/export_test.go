package postgres

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// ResolveAmbiguous exposes the commit-outcome resolution: txID or (scope, key) names the
// batch's witness row.
func (s *Store) ResolveAmbiguous(ctx context.Context, xid string, txID *uuid.UUID, scope, key string, cause error) error {
	return s.resolveAmbiguous(ctx, xid, witness{txID: txID, scope: scope, key: key}, cause)
}

// ErrAmbiguous is the error of a batch proven not applied.
var ErrAmbiguous = errAmbiguous

// MigrateDownAndUp applies every migration, takes them all back one by one, and applies them
// again, so that each Down is proven to undo its Up.
func MigrateDownAndUp(ctx context.Context, directURL string) error {
	cfg, err := pgx.ParseConfig(directURL)
	if err != nil {
		return err
	}
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	p, err := migrator(db)
	if err != nil {
		return err
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("up: %w", err)
	}
	if _, err := p.DownTo(ctx, 0); err != nil {
		return fmt.Errorf("down: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("up again: %w", err)
	}
	return nil
}
