package clickhouse

import "context"

// Hooks for the external test package: it must be external because it imports testenv, which
// imports this package through the processor.

var Connect = connect

const DeleteChunk = deleteChunk

// Table is the database-qualified table name.
func (s *Store) Table() string { return s.table }

// Exec runs one statement.
func (s *Store) Exec(ctx context.Context, q string) error { return s.conn.Exec(ctx, q) }

// QueryCount runs a query answering one count.
func (s *Store) QueryCount(ctx context.Context, q string) (uint64, error) {
	var n uint64
	err := s.conn.QueryRow(ctx, q).Scan(&n)
	return n, err
}
