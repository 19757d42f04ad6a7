package processor_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"txn/internal/processor"
	"txn/internal/testenv"
)

// TestUsers checks creating and changing users: validation, duplicate emails, webhook targets.
func TestUsers(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	taken := "Taken.Person@Example.com"
	f.admin.Must(t, http.StatusCreated, "POST", "/users", obj("name", "taken", "email", taken))
	user := func(kv ...any) map[string]any {
		return with(obj("name", "carol", "email", "carol@example.com"), kv...)
	}
	bad := func(name string, body any, field string) apiCase {
		return apiCase{name: name, c: f.admin, method: "POST", path: "/users", body: body, status: 400, code: "validation_failed", field: field}
	}
	patch := func(name string, body any, status int, code, field string) apiCase {
		return apiCase{name: "PATCH " + name, c: f.ac, method: "PATCH", path: "/users/" + f.alice.ID, body: body,
			status: status, code: code, field: field}
	}
	runRefused(t, f.db, []apiCase{
		bad("email without @", user("email", "carol.example.com"), "email"),
		bad("email empty", user("email", ""), "email"),
		bad("email missing", user("email", nil), "email"),
		bad("email with a display name", user("email", "Carol <carol@example.com>"), "email"),
		bad("email with a NUL", user("email", "carol\x00@example.com"), "email"),
		bad("email as number", user("email", 5), "email"),
		bad("name missing", user("name", nil), "name"),
		bad("name blank", user("name", "   "), "name"),
		bad("name with a NUL", user("name", "car\x00ol"), "name"),
		bad("name over 200 characters", user("name", strings.Repeat("n", 201)), "name"),
		bad("webhook ftp", user("webhook_url", "ftp://example.com/hook"), "webhook_url"),
		bad("webhook relative", user("webhook_url", "/hook"), "webhook_url"),
		bad("webhook not a URL", user("webhook_url", "not a url"), "webhook_url"),
		bad("webhook with credentials", user("webhook_url", "https://u:p@example.com/hook"), "webhook_url"),
		bad("webhook as number", user("webhook_url", 5), "webhook_url"),
		bad("tags not strings", user("tags", []int{1}), "tags"),
		bad("tag with a space", user("tags", []string{"a b"}), "tags"),
		bad("21 tags", user("tags", strings.Split(strings.Repeat("t,", 20)+"t", ",")), "tags"),
		{name: "unknown field", c: f.admin, method: "POST", path: "/users", body: user("admin", true), status: 400, code: "invalid_json"},
		{name: "duplicate email", c: f.admin, method: "POST", path: "/users", body: user("email", taken), status: 409, code: "conflict"},
		{name: "duplicate email in other case", c: f.admin, method: "POST", path: "/users", body: user("email", strings.ToLower(taken)), status: 409, code: "conflict"},
		{name: "body over 64 KiB", c: f.admin, method: "POST", path: "/users", body: user("name", strings.Repeat("n", 65<<10)), status: 413, code: "body_too_large"},
		{name: "text/plain", c: f.admin, method: "POST", path: "/users", body: mustJSON(t, user()),
			headers: []string{"Content-Type", "text/plain"}, status: 415, code: "unsupported_media_type"},
		patch("name empty", obj("name", ""), 400, "validation_failed", "name"),
		patch("name null", obj("name", nil), 400, "validation_failed", "name"),
		patch("name as number", obj("name", 5), 400, "validation_failed", "name"),
		patch("name with a NUL", obj("name", "a\x00"), 400, "validation_failed", "name"),
		patch("webhook as number", obj("webhook_url", 5), 400, "validation_failed", "webhook_url"),
		patch("webhook ftp", obj("webhook_url", "ftp://example.com"), 400, "validation_failed", "webhook_url"),
		patch("email", obj("email", "new@example.com"), 400, "invalid_json", ""),
		patch("array", `[]`, 400, "invalid_json", ""),
		patch("null", `null`, 400, "invalid_json", ""),
		patch("malformed", `{"name": `, 400, "invalid_json", ""),
		patch("body over 64 KiB", obj("name", strings.Repeat("n", 65<<10)), 413, "body_too_large", ""),
		{name: "PATCH without content type", c: f.ac, method: "PATCH", path: "/users/" + f.alice.ID, body: `{"name":"x"}`,
			headers: []string{"Content-Type", ""}, status: 415, code: "unsupported_media_type"},
	})

	t.Run("create", func(t *testing.T) {
		hook := "http://127.0.0.1:9/hook" // allowed: this processor has AllowPrivate
		r := f.admin.Must(t, http.StatusCreated, "POST", "/users",
			user("email", "  Carol@Example.com ", "webhook_url", hook, "tags", []string{"vip", "team:a"}))
		var u struct {
			ID            string   `json:"id"`
			Name          string   `json:"name"`
			Email         string   `json:"email"`
			WebhookURL    *string  `json:"webhook_url"`
			Tags          []string `json:"tags"`
			APIKey        string   `json:"api_key"`
			WebhookSecret string   `json:"webhook_secret"`
		}
		r.JSON(t, &u)
		if u.Name != "carol" || u.Email != "carol@example.com" || u.WebhookURL == nil || *u.WebhookURL != hook ||
			!slices.Equal(u.Tags, []string{"vip", "team:a"}) || !strings.HasPrefix(u.APIKey, "tk_") ||
			!strings.HasPrefix(u.WebhookSecret, "whsec_") {
			t.Errorf("created %+v", u)
		}
		got := f.p.Client(u.APIKey).Must(t, http.StatusOK, "GET", "/users/"+u.ID, nil).Map(t)
		if _, ok := got["api_key"]; ok || got["webhook_secret"] != nil {
			t.Errorf("GET user shows a secret: %v", got)
		}
		if got["created_at"] != r.Map(t)["created_at"] {
			t.Errorf("GET user created_at %v, POST answered %v", got["created_at"], r.Map(t)["created_at"])
		}
		for _, k := range []string{"created_at", "updated_at"} {
			s, _ := got[k].(string)
			assertUTC(t, "user "+k, s)
		}
	})

	t.Run("patch", func(t *testing.T) {
		type userJSON struct {
			Name       string  `json:"name"`
			WebhookURL *string `json:"webhook_url"`
		}
		get := func() userJSON {
			var u userJSON
			f.admin.Must(t, http.StatusOK, "GET", "/users/"+f.alice.ID, nil).JSON(t, &u)
			return u
		}
		steps := []struct {
			c    *testenv.Client
			body map[string]any
			want userJSON
		}{
			{f.ac, obj("webhook_url", "https://example.com/a"), userJSON{"alice", ptr("https://example.com/a")}},
			{f.ac, obj("name", "Alice A."), userJSON{"Alice A.", ptr("https://example.com/a")}},
			{f.admin, obj("name", "Alice B.", "webhook_url", "https://example.org/b"), userJSON{"Alice B.", ptr("https://example.org/b")}},
			{f.ac, obj(), userJSON{"Alice B.", ptr("https://example.org/b")}},
			{f.ac, obj("webhook_url", nil), userJSON{"Alice B.", nil}},
			{f.admin, obj("webhook_url", nil, "name", "alice"), userJSON{"alice", nil}},
		}
		for i, s := range steps {
			var answered userJSON
			s.c.Must(t, http.StatusOK, "PATCH", "/users/"+f.alice.ID, s.body).JSON(t, &answered)
			stored := get()
			for _, u := range []userJSON{answered, stored} {
				if u.Name != s.want.Name || !equalPtr(u.WebhookURL, s.want.WebhookURL) {
					t.Errorf("step %d %v: user is %q %v, want %q %v", i, s.body, u.Name, deref(u.WebhookURL),
						s.want.Name, deref(s.want.WebhookURL))
				}
			}
		}
	})
}

func ptr[T any](v T) *T { return &v }

func equalPtr(a, b *string) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

// TestPrivateWebhooks checks that with AllowPrivate off, loopback and private webhook targets
// are refused at POST and PATCH, and public ones accepted.
func TestPrivateWebhooks(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *processor.Config) { c.AllowPrivate = false })
	targets := []string{
		"http://127.0.0.1:8080/hook", "http://127.1.2.3/", "http://localhost/hook", "http://LOCALHOST:9/",
		"http://api.localhost/", "http://metadata.google.internal/", "http://10.0.0.1/", "http://172.16.5.4/",
		"http://192.168.1.1/", "http://169.254.169.254/latest/meta-data", "http://100.64.0.1/", "http://0.0.0.0/",
		"http://[::1]/hook", "http://[fe80::1]/", "http://[fc00::1]/", "http://[::ffff:127.0.0.1]/", "http://[::]/",
	}
	var cases []apiCase
	for i, target := range targets {
		cases = append(cases,
			apiCase{name: "POST " + target, c: f.admin, method: "POST", path: "/users",
				body:   obj("name", "w", "email", fmt.Sprintf("w%d@example.com", i), "webhook_url", target),
				status: 400, code: "validation_failed", field: "webhook_url"},
			apiCase{name: "PATCH " + target, c: f.ac, method: "PATCH", path: "/users/" + f.alice.ID,
				body: obj("webhook_url", target), status: 400, code: "validation_failed", field: "webhook_url"})
	}
	runRefused(t, f.db, cases)

	public := "https://example.com/hook"
	f.admin.Must(t, http.StatusCreated, "POST", "/users", obj("name", "w", "email", "public@example.com", "webhook_url", public))
	var u struct {
		WebhookURL *string `json:"webhook_url"`
	}
	f.ac.Must(t, http.StatusOK, "PATCH", "/users/"+f.alice.ID, obj("webhook_url", "http://93.184.215.14/hook")).JSON(t, &u)
	if u.WebhookURL == nil || *u.WebhookURL != "http://93.184.215.14/hook" {
		t.Errorf("webhook_url %v after PATCH to a public address", deref(u.WebhookURL))
	}
}
