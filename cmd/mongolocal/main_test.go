package main

import (
	"context"
	"database/sql"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"txn/internal/testenv"
)

// startStandIn runs the stand-in in process on a free port and a data directory of its own.
func startStandIn(t *testing.T, dir string) string {
	t.Helper()
	addr := testenv.FreeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, func() {}, []string{"-port", port, "-data-dir", dir}, func(string) string { return "" }, io.Discard)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	testenv.Eventually(t, 30*time.Second, func() string {
		if c, err := net.Dial("tcp", addr); err != nil {
			return "not listening: " + err.Error()
		} else {
			c.Close()
		}
		return ""
	})
	return "mongodb://" + addr + "/test"
}

// queryPlan is SQLite's plan for the statement FerretDB runs for a find by _id on collection
// name of database db.
func queryPlan(t *testing.T, dir, db, name string) string {
	t.Helper()
	conn, err := sql.Open("sqlite", "file:"+filepath.Join(dir, db+".sqlite")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var table string
	if err := conn.QueryRow(`SELECT table_name FROM _ferretdb_collections WHERE name = ?`, name).Scan(&table); err != nil {
		return "no table yet: " + err.Error()
	}
	rows, err := conn.Query(`EXPLAIN QUERY PLAN SELECT _ferretdb_sjson FROM "`+table+`" WHERE _ferretdb_sjson->'$._id' = ?`, `"x"`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	return strings.Join(plan, "; ")
}

// TestFindByIDUsesAnIndex checks that a find by _id is an index search, as in MongoDB, for a
// collection that existed before the stand-in started and for one created while it runs.
func TestFindByIDUsesAnIndex(t *testing.T) {
	testenv.Integration(t)
	dir := t.TempDir()
	orphan := filepath.Join(dir, "dropped.sqlite-wal")
	if err := os.WriteFile(orphan, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	url := startStandIn(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	client, err := mongo.Connect(options.Client().ApplyURI(url))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(ctx)
	coll := client.Database("test").Collection("items")
	docs := make([]any, 1000)
	for i := range docs {
		docs[i] = bson.D{{Key: "_id", Value: "item-" + time.Duration(i).String()}, {Key: "n", Value: i}}
	}
	if _, err := coll.InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}

	t.Run("a new collection's lookups by _id become index searches", func(t *testing.T) {
		testenv.Eventually(t, 10*time.Second, func() string {
			if plan := queryPlan(t, dir, "test", "items"); !strings.Contains(plan, "USING INDEX") {
				return "plan: " + plan
			}
			return ""
		})
	})
	t.Run("a find by _id still finds its document", func(t *testing.T) {
		var got struct {
			N int `bson:"n"`
		}
		if err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: "item-500ns"}}).Decode(&got); err != nil || got.N != 500 {
			t.Errorf("find by _id: %+v, %v; want n 500", got, err)
		}
	})
	t.Run("the index is not listed to clients", func(t *testing.T) {
		specs, err := coll.Indexes().ListSpecifications(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(specs) != 1 || specs[0].Name != "_id_" {
			t.Errorf("indexes listed: %+v, want only _id_", specs)
		}
	})
	t.Run("journals of dropped databases are removed at start", func(t *testing.T) {
		if _, err := os.Stat(orphan); !os.IsNotExist(err) {
			t.Errorf("%s is still there: %v", orphan, err)
		}
	})
}
