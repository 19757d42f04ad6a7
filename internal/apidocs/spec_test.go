package apidocs_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pb33f/go-yaml"
	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/config"
	liberrors "github.com/pb33f/libopenapi-validator/errors"
	"github.com/pb33f/libopenapi-validator/schema_validation"
	"github.com/pb33f/libopenapi/datamodel/high/base"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"
	"github.com/pb33f/libopenapi/orderedmap"

	"txn/internal/apidocs"
	"txn/internal/httpapi"
	"txn/internal/loadtest"
	"txn/internal/notify"
	"txn/internal/pipeline"
)

var specs = map[string][]byte{"processor": apidocs.ProcessorSpec, "loadtest": apidocs.LoadtestSpec}

// openSpec parses an OpenAPI document (YAML or JSON) and builds a validator that also checks
// formats (uuid, date-time, email, ...) and, in strict mode, reports properties and headers an
// answer carries that the spec does not declare: schemas stay open for clients (fields may be
// added), yet the spec must list every field the server actually sends. strict false turns
// that off.
func openSpec(t testing.TB, spec []byte, strict ...bool) (libopenapi.Document, *v3.Document, validator.Validator) {
	t.Helper()
	js, err := apidocs.ToJSON(spec)
	if err != nil {
		t.Fatalf("spec: %v", err)
	}
	doc, err := libopenapi.NewDocument(js)
	if err != nil {
		t.Fatalf("spec: %v", err)
	}
	model, err := doc.BuildV3Model()
	if err != nil {
		t.Fatalf("spec: %v", err)
	}
	opts := []config.Option{config.WithFormatAssertions(), config.WithStrictMode()}
	if len(strict) > 0 && !strict[0] {
		opts = opts[:1]
	}
	v, errs := validator.NewValidator(doc, opts...)
	if len(errs) > 0 {
		t.Fatalf("spec: %v", errs)
	}
	return doc, &model.Model, v
}

func describe(errs []*liberrors.ValidationError) string {
	var b strings.Builder
	for _, e := range errs {
		fmt.Fprintf(&b, "\n  - %s: %s", e.Message, e.Reason)
		for _, f := range e.SchemaValidationErrors {
			fmt.Fprintf(&b, "\n      %s: %s", f.FieldPath, f.Reason)
		}
	}
	return b.String()
}

// TestSpecsAreOpenAPI31 validates each document, as /openapi.json serves it, against the
// OpenAPI 3.1 specification's schema.
func TestSpecsAreOpenAPI31(t *testing.T) {
	for name, spec := range specs {
		t.Run(name, func(t *testing.T) {
			validateDocument(t, spec)
		})
	}
}

func validateDocument(t *testing.T, spec []byte) {
	t.Helper()
	doc, _, v := openSpec(t, spec)
	if ver := doc.GetVersion(); !strings.HasPrefix(ver, "3.1.") {
		t.Errorf("openapi: %q, want 3.1.x", ver)
	}
	if ok, errs := v.ValidateDocument(); !ok {
		t.Errorf("not a valid OpenAPI 3.1 document:%s", describe(errs))
	}
}

// TestRoutesMatchSpec fails when a route is registered but not documented, or documented but
// not registered. The routes come from the very calls that register them (httpapi.Routes).
func TestRoutesMatchSpec(t *testing.T) {
	t.Run("processor", func(t *testing.T) {
		// "/api/" answers 404 problem+json for unknown API paths: a fallback, not an operation.
		if err := apidocs.CheckRoutes(apidocs.ProcessorSpec, httpapi.Routes(), "/api/"); err != nil {
			t.Errorf("the processor's router and internal/apidocs/processor.yaml differ:\n%v", err)
		}
	})
	t.Run("loadtest", func(t *testing.T) {
		if err := apidocs.CheckRoutes(apidocs.LoadtestSpec, loadtest.Routes()); err != nil {
			t.Errorf("the loadtest router and internal/apidocs/loadtest.yaml differ:\n%v", err)
		}
	})
}

// TestCheckRoutes proves the comparison sees drift both ways.
func TestCheckRoutes(t *testing.T) {
	spec := []byte(`openapi: 3.1.1
paths:
  /a/{id}:
    parameters: []
    get: {}
    post: {}
  /:
    get: {}
`)
	if err := apidocs.CheckRoutes(spec, []string{"GET /a/{id}", "POST /a/{id}", "GET /{$}", "/x/"}, "/x/"); err != nil {
		t.Errorf("same routes: %v", err)
	}
	err := apidocs.CheckRoutes(spec, []string{"GET /a/{id}", "DELETE /a/{id}", "GET /{$}", "/x/"})
	for _, want := range []string{"routed but not in the spec: DELETE /a/{id}", "routed but not in the spec: /x/",
		"in the spec but not routed: POST /a/{id}"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want it to say %q", err, want)
		}
	}
}

// TestSpecsHaveNoStrayKeys catches a YAML slip no validator sees: in a flow mapping such as
// {description: a, b}, an unquoted comma or ": " splits the value and makes a key of the rest,
// which OpenAPI 3.1 then takes as an unknown (ignored) schema keyword. No real key has a space.
func TestSpecsHaveNoStrayKeys(t *testing.T) {
	for name, spec := range specs {
		js, err := apidocs.ToJSON(spec)
		if err != nil {
			t.Fatal(err)
		}
		var doc any
		if err := json.Unmarshal(js, &doc); err != nil {
			t.Fatal(err)
		}
		var walk func(path string, v any)
		walk = func(path string, v any) {
			switch v := v.(type) {
			case map[string]any:
				for k, c := range v {
					if strings.ContainsAny(k, " \t") {
						t.Errorf("%s: key %q at %s: quote the value before it", name, k, path)
					}
					walk(path+"/"+k, c)
				}
			case []any:
				for i, c := range v {
					walk(fmt.Sprintf("%s/%d", path, i), c)
				}
			}
		}
		walk("", doc)
	}
}

// TestExamplesMatchSchemas keeps the examples the docs page shows true to the schemas.
func TestExamplesMatchSchemas(t *testing.T) {
	for name, spec := range specs {
		t.Run(name, func(t *testing.T) {
			_, model, _ := openSpec(t, spec)
			sv := schema_validation.NewSchemaValidator(config.WithFormatAssertions())
			check := func(where string, schema *base.Schema, example *yaml.Node) {
				if schema == nil || example == nil {
					return
				}
				var v any
				if err := example.Decode(&v); err != nil {
					t.Errorf("%s: %v", where, err)
					return
				}
				b, err := json.Marshal(v)
				if err != nil {
					t.Errorf("%s: %v", where, err)
					return
				}
				if ok, errs := sv.ValidateSchemaBytes(schema, b); !ok {
					t.Errorf("%s: example %s:%s", where, b, describe(errs))
				}
			}
			media := func(where string, content *orderedmap.Map[string, *v3.MediaType]) {
				for ctype, mt := range content.FromOldest() {
					if mt.Schema == nil {
						continue
					}
					schema := mt.Schema.Schema()
					check(where+" "+ctype, schema, mt.Example)
					for name, ex := range mt.Examples.FromOldest() {
						check(where+" "+ctype+" example "+name, schema, ex.Value)
					}
				}
			}
			n := 0
			for path, item := range model.Paths.PathItems.FromOldest() {
				for method, op := range item.GetOperations().FromOldest() {
					where := strings.ToUpper(method) + " " + path
					if op.RequestBody != nil {
						media(where+" request", op.RequestBody.Content)
					}
					for code, resp := range op.Responses.Codes.FromOldest() {
						media(where+" "+code, resp.Content)
					}
					n++
				}
			}
			for name, proxy := range model.Components.Schemas.FromOldest() {
				schema := proxy.Schema()
				check("schema "+name, schema, schema.Example)
			}
			if n == 0 {
				t.Fatal("no operations found")
			}
		})
	}
}

// TestReadModelItemsMatchSpec checks the JSON of the read models' items against their schemas:
// the live test's processor runs without the event pipeline, so its lists stay empty.
func TestReadModelItemsMatchSpec(t *testing.T) {
	_, model, _ := openSpec(t, apidocs.ProcessorSpec)
	now := time.Now().UTC()
	lastErr := "webhook answered 500"
	other := uuid.New()
	items := map[string][]any{
		"Activity": {
			pipeline.Activity{ID: "a1", EventID: uuid.New(), TransactionID: uuid.New(), Type: "transfer", Amount: -2500,
				Currency: "USD", AccountID: uuid.New(), CounterpartyAccountID: &other, CreatedAt: now},
			pipeline.Activity{ID: "a2", EventID: uuid.New(), TransactionID: uuid.New(), Type: "deposit", Amount: 100,
				Currency: "EUR", AccountID: uuid.New(), CreatedAt: now},
			pipeline.Activity{ID: "a3", EventID: uuid.New(), TransactionID: uuid.New(), Type: pipeline.KindHold, Amount: -700,
				Currency: "USD", AccountID: uuid.New(), CounterpartyAccountID: &other, CreatedAt: now},
			pipeline.Activity{ID: "a4", EventID: uuid.New(), TransactionID: uuid.New(), Type: pipeline.KindHoldExpired, Amount: 700,
				Currency: "USD", AccountID: uuid.New(), CreatedAt: now},
			pipeline.Activity{ID: "a5", EventID: uuid.New(), TransactionID: uuid.New(), Type: pipeline.KindCapture, Amount: -500,
				Currency: "USD", AccountID: uuid.New(), CounterpartyAccountID: &other, CreatedAt: now},
		},
		"Notification": {
			notify.Notification{ID: uuid.New(), TransactionID: uuid.New(), Kind: "transfer_sent", Message: "Transfer of 25.00 USD sent",
				Status: notify.Pending, Attempts: 2, LastError: &lastErr, CreatedAt: now},
			notify.Notification{ID: uuid.New(), TransactionID: uuid.New(), Kind: "deposit_received", Message: "Deposit of 1.00 USD received",
				Status: notify.Delivered, Attempts: 1, CreatedAt: now, DeliveredAt: &now},
		},
	}
	sv := schema_validation.NewSchemaValidator(config.WithFormatAssertions())
	for name, values := range items {
		proxy := model.Components.Schemas.GetOrZero(name)
		if proxy == nil {
			t.Fatalf("no schema %s", name)
		}
		schema := proxy.Schema()
		for _, v := range values {
			b, _ := json.Marshal(v)
			if ok, errs := sv.ValidateSchemaBytes(schema, b); !ok {
				t.Errorf("%s %s:%s", name, b, describe(errs))
			}
			// As strict mode does for live answers: every field sent must be documented.
			var fields map[string]any
			_ = json.Unmarshal(b, &fields)
			for f := range fields {
				if schema.Properties.GetOrZero(f) == nil {
					t.Errorf("%s: field %q is not in the spec", name, f)
				}
			}
		}
	}
}
