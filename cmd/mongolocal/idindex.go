package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // FerretDB's own SQLite driver, registered as "sqlite"
)

// FerretDB v1's SQLite backend pushes a find or update by _id down as
// `WHERE _ferretdb_sjson->'$._id' = ?`, but indexes _id as `_ferretdb_sjson->"_id"`: SQLite
// cannot match the two expressions, so every lookup by _id scans the whole collection (a
// notification's claim and record at 126,000 documents: ~0.1 s each, CPU-bound). MongoDB answers
// them from its _id index. The keeper adds, to every collection's table, an index on the very
// expression the pushdown uses, so lookups by _id are index searches here too.
//
// FerretDB keeps its own index list in its metadata, so clients never see this index; dropping
// a collection drops its table and the index with it.

// idLookupIndex names the keeper's index of a collection's table.
func idLookupIndex(table string) string { return table + "_mongolocal_id_lookup" }

// keepIDIndexes indexes the tables of every database in dir once, then every interval
// those created since, until ctx is done.
func keepIDIndexes(ctx context.Context, dir string, interval time.Duration, log *slog.Logger) {
	k := newIndexKeeper(dir)
	defer k.close()
	for {
		if err := k.pass(ctx); err != nil && ctx.Err() == nil {
			log.Warn("index _id lookups", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}

// indexAll indexes every collection table of every database file in dir, once.
func indexAll(ctx context.Context, dir string) error {
	k := newIndexKeeper(dir)
	defer k.close()
	return k.pass(ctx)
}

// indexKeeper keeps a handle on each database file (a pass every 250 ms must not reopen them
// all) and the tables it indexed already.
type indexKeeper struct {
	dir  string
	dbs  map[string]*sql.DB // by file
	done map[string]bool    // file/table already indexed
}

func newIndexKeeper(dir string) *indexKeeper {
	return &indexKeeper{dir: dir, dbs: map[string]*sql.DB{}, done: map[string]bool{}}
}

func (k *indexKeeper) close() {
	for _, db := range k.dbs {
		db.Close()
	}
}

// pass indexes the tables not indexed yet, and lets go of the files of dropped databases.
func (k *indexKeeper) pass(ctx context.Context) error {
	files, err := filepath.Glob(filepath.Join(k.dir, "*.sqlite"))
	if err != nil {
		return err
	}
	present := map[string]bool{}
	var errs []error
	for _, f := range files {
		present[f] = true
		if err := k.indexDatabase(ctx, f); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", filepath.Base(f), err))
		}
	}
	for f, db := range k.dbs {
		if !present[f] {
			db.Close()
			delete(k.dbs, f)
			for key := range k.done {
				if strings.HasPrefix(key, f+"/") {
					delete(k.done, key)
				}
			}
		}
	}
	return errors.Join(errs...)
}

func (k *indexKeeper) indexDatabase(ctx context.Context, file string) error {
	db := k.dbs[file]
	if db == nil {
		dsn := (&url.URL{Scheme: "file", Path: file, RawQuery: url.Values{
			"_pragma": {"busy_timeout(10000)", "journal_mode(wal)"}}.Encode()}).String()
		var err error
		if db, err = sql.Open("sqlite", dsn); err != nil {
			return err
		}
		db.SetMaxOpenConns(1)
		k.dbs[file] = db
	}
	rows, err := db.QueryContext(ctx, `SELECT table_name FROM _ferretdb_collections`)
	if err != nil {
		if strings.Contains(err.Error(), "no such table") {
			return nil // a database FerretDB is still creating
		}
		return err
	}
	var tables []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return err
		}
		if !k.done[file+"/"+t] {
			tables = append(tables, t)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, t := range tables {
		q := fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %q ON %q (_ferretdb_sjson->'$._id')`, idLookupIndex(t), t)
		if _, err := db.ExecContext(ctx, q); err != nil {
			if strings.Contains(err.Error(), "no such table") {
				continue // dropped meanwhile
			}
			return fmt.Errorf("index %s: %w", t, err)
		}
		k.done[file+"/"+t] = true
	}
	return nil
}

// removeOrphanJournals deletes the WAL and shared-memory files of databases whose main file is
// gone: FerretDB removes a dropped database's file but leaves them, tens of MiB each.
func removeOrphanJournals(dir string) error {
	var errs []error
	for _, suffix := range []string{"-wal", "-shm"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.sqlite"+suffix))
		if err != nil {
			return err
		}
		for _, f := range files {
			if _, err := os.Stat(strings.TrimSuffix(f, suffix)); errors.Is(err, os.ErrNotExist) {
				if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
					errs = append(errs, err)
				}
			}
		}
	}
	return errors.Join(errs...)
}
