package mongo

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Test hooks: the tests live in package mongo_test, since testenv imports this package through
// the processor.

var OnlyDuplicates = onlyDuplicates

func (s *Store) DatabaseName() string { return s.activity.Database().Name() }

func (s *Store) DropDatabase(ctx context.Context) error { return s.activity.Database().Drop(ctx) }

func (s *Store) CountActivities(ctx context.Context) (int64, error) {
	return s.activity.CountDocuments(ctx, bson.D{})
}

func (s *Store) RawActivity(ctx context.Context, id string) (bson.M, error) {
	var m bson.M
	err := s.activity.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&m)
	return m, err
}

func (s *Store) IndexKeys(ctx context.Context) (map[string]bson.D, error) {
	cur, err := s.activity.Indexes().List(ctx)
	if err != nil {
		return nil, err
	}
	var specs []struct {
		Name string `bson:"name"`
		Key  bson.D `bson:"key"`
	}
	if err := cur.All(ctx, &specs); err != nil {
		return nil, err
	}
	out := map[string]bson.D{}
	for _, s := range specs {
		out[s.Name] = s.Key
	}
	return out, nil
}
