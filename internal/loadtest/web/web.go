// Package web is the loadtest service's web UI: a page, a script and a stylesheet embedded in
// the binary, talking to the loadtest API (API.md, "Loadtest") from the browser. Nothing is
// fetched from elsewhere; the charts are drawn as SVG by app.js.
package web

import (
	"embed"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"

	"txn/internal/static"
)

//go:embed assets
var assets embed.FS

// Handler serves the UI: index.html at / and its assets by name (/app.js, /app.css). Anything
// else is 404. Answers carry an ETag, so a browser revalidates instead of keeping an old copy
// after the binary changes.
func Handler() http.Handler {
	files := map[string]static.File{}
	err := fs.WalkDir(assets, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := assets.ReadFile(p)
		if err != nil {
			return err
		}
		ctype := mime.TypeByExtension(path.Ext(p))
		if ctype == "" {
			ctype = http.DetectContentType(b)
		}
		files["/"+strings.TrimPrefix(p, "assets/")] = static.NewFile(ctype, b, false)
		return nil
	})
	if err != nil {
		panic("web: embedded assets: " + err.Error()) // cannot happen: they are compiled in
	}
	files["/"] = files["/index.html"]
	return static.Handler(files, "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "+
		"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
}
