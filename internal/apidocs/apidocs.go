// Package apidocs serves each HTTP service's OpenAPI 3.1 document at /openapi.json and an
// interactive docs page (Swagger UI) at /docs. Everything ships inside the binary: the specs are
// embedded YAML, and the page's assets are vendored in assets/ by scripts/update-docs-assets.sh,
// so the page works with the network off.
package apidocs

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"

	"go.yaml.in/yaml/v3"

	"txn/internal/static"
)

// The services' OpenAPI documents, as written (YAML).
var (
	//go:embed processor.yaml
	ProcessorSpec []byte
	//go:embed loadtest.yaml
	LoadtestSpec []byte
)

//go:embed assets/swagger-ui-bundle.js.gz assets/swagger-ui.css.gz
var vendored embed.FS

// Patterns are the routes Handler answers; each service's spec documents them too.
var Patterns = []string{"GET /openapi.json", "GET /docs", "GET /docs/{asset}"}

// Registrar is what Mount registers on: *http.ServeMux, or a wrapper that records routes.
type Registrar interface {
	Handle(pattern string, handler http.Handler)
}

// Mount registers Handler(spec, title) on every pattern in Patterns.
func Mount(mux Registrar, spec []byte, title string) {
	h := Handler(spec, title)
	for _, p := range Patterns {
		mux.Handle(p, h)
	}
}

// The page refers to its assets and the spec relatively ("docs/x" and "openapi.json" from
// /docs), so it also works behind a proxy that mounts the service under a path prefix. The
// empty data: icon keeps the browser from asking the service for /favicon.ico.
var page = template.Must(template.New("docs").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.}}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="docs/swagger-ui-bundle.js"></script>
<script src="docs/init.js"></script>
</body>
</html>
`))

// validatorUrl: null stops Swagger UI from fetching a badge from validator.swagger.io.
const initJS = `window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    validatorUrl: null,
    displayRequestDuration: true,
    defaultModelsExpandDepth: 0
  });
});
`

// csp keeps the page to its own origin, so nothing external can load even if a future asset
// tries; Swagger UI sets inline styles and uses data: images.
const csp = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; " +
	"object-src 'none'; base-uri 'none'; frame-ancestors 'none'"

// Handler serves spec (YAML or JSON) as JSON at /openapi.json and the docs page titled title
// at /docs, with its assets under /docs/. It panics when spec does not parse: the specs are
// embedded and tested, so that is a programming error found at startup.
func Handler(spec []byte, title string) http.Handler {
	js, err := ToJSON(spec)
	if err != nil {
		panic("apidocs: " + err.Error())
	}
	var html bytes.Buffer
	if err := page.Execute(&html, title); err != nil {
		panic("apidocs: " + err.Error())
	}
	files := map[string]static.File{
		"/openapi.json":              static.NewFile("application/json", js, false),
		"/docs":                      static.NewFile("text/html; charset=utf-8", html.Bytes(), false),
		"/docs/init.js":              static.NewFile("text/javascript; charset=utf-8", []byte(initJS), false),
		"/docs/swagger-ui-bundle.js": static.NewFile("text/javascript; charset=utf-8", asset("swagger-ui-bundle.js"), true),
		"/docs/swagger-ui.css":       static.NewFile("text/css; charset=utf-8", asset("swagger-ui.css"), true),
	}
	return static.Handler(files, csp)
}

func asset(name string) []byte {
	b, err := vendored.ReadFile("assets/" + name + ".gz")
	if err != nil {
		panic("apidocs: " + err.Error())
	}
	return b
}

// ToJSON converts a YAML (or JSON) document to indented JSON, keeping the order of keys, so
// the docs page lists paths and fields in the order the spec was written.
func ToJSON(doc []byte) ([]byte, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(doc, &root); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := writeJSON(&buf, &root); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, buf.Bytes(), "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

func writeJSON(buf *bytes.Buffer, n *yaml.Node) error {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) != 1 {
			return fmt.Errorf("line %d: want one document", n.Line)
		}
		return writeJSON(buf, n.Content[0])
	case yaml.AliasNode:
		return writeJSON(buf, n.Alias)
	case yaml.MappingNode:
		buf.WriteByte('{')
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode || k.Value == "<<" {
				return fmt.Errorf("line %d: keys must be plain scalars (no merge keys)", k.Line)
			}
			// A repeated key would silently replace the first: refuse it.
			if seen[k.Value] {
				return fmt.Errorf("line %d: duplicate key %q", k.Line, k.Value)
			}
			seen[k.Value] = true
			if i > 0 {
				buf.WriteByte(',')
			}
			key, _ := json.Marshal(k.Value)
			buf.Write(key)
			buf.WriteByte(':')
			if err := writeJSON(buf, n.Content[i+1]); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
	case yaml.SequenceNode:
		buf.WriteByte('[')
		for i, c := range n.Content {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := writeJSON(buf, c); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
	case yaml.ScalarNode:
		var v any = n.Value
		// Timestamps stay the strings they were written as, not re-rendered times.
		if t := n.ShortTag(); t != "!!str" && t != "!!timestamp" {
			if err := n.Decode(&v); err != nil {
				return fmt.Errorf("line %d: %w", n.Line, err)
			}
		}
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("line %d: %w", n.Line, err)
		}
		buf.Write(b)
	default:
		return fmt.Errorf("line %d: unexpected YAML node", n.Line)
	}
	return nil
}
