package postgres

import (
	"context"

	"github.com/google/uuid"
)

// ResolveAmbiguous exposes the commit-outcome resolution: txID or (scope, key) names the
// batch's witness row.
func (s *Store) ResolveAmbiguous(ctx context.Context, xid string, txID *uuid.UUID, scope, key string, cause error) error {
	return s.resolveAmbiguous(ctx, xid, witness{txID: txID, scope: scope, key: key}, cause)
}

// ErrAmbiguous is the error of a batch proven not applied.
var ErrAmbiguous = errAmbiguous
