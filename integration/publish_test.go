package integration

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/pulpo/pulpo/integration/harness"
)

// created returns the task's created resources that contain part.
func created(task map[string]any, part string) []string {
	var out []string
	for _, h := range task["created_resources"].([]any) {
		if s := h.(string); strings.Contains(s, part) {
			out = append(out, s)
		}
	}
	return out
}

func one(t *testing.T, list []string) string {
	t.Helper()
	if len(list) != 1 {
		t.Fatalf("want one href, got %v", list)
	}
	return list[0]
}

func TestPublicationsDistributionsAndUploads(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	few := fixture(t, root, "few", smallFiles("few", 3), nil)
	hs := httptest.NewServer(http.FileServer(http.Dir(root)))
	t.Cleanup(hs.Close)
	srv := harness.Start(t, harness.Options{})

	rm := srv.JSON(t, http.MethodPost, "remotes/file/file/", map[string]any{"name": "few", "url": hs.URL + few}, http.StatusCreated)
	repo := srv.JSON(t, http.MethodPost, "repositories/file/file/", map[string]any{"name": "few", "remote": rm["pulp_href"]}, http.StatusCreated)
	rh := repo["pulp_href"].(string)
	srv.RunTask(t, http.MethodPost, rh+"sync/", map[string]any{})

	// Publish the latest version; the publication is the task's created resource.
	task := srv.RunTask(t, http.MethodPost, "publications/file/file/", map[string]any{"repository": rh})
	pubHref := one(t, created(task, "/publications/file/file/"))
	pub := srv.JSON(t, http.MethodGet, pubHref, nil, http.StatusOK)
	if pub["repository_version"] != rh+"versions/1/" || pub["repository"] != rh || pub["manifest"] != "PULP_MANIFEST" {
		t.Fatalf("publication %v", pub)
	}
	list := srv.JSON(t, http.MethodGet, "publications/file/file/?repository_version="+rh+"versions/1/", nil, http.StatusOK)
	if list["count"].(float64) != 1 {
		t.Fatalf("publications of version 1: %v", list)
	}
	if n := srv.JSON(t, http.MethodGet, "publications/?repository_version="+rh+"versions/0/", nil, http.StatusOK)["count"].(float64); n != 0 {
		t.Fatalf("publications of version 0: %v", n)
	}
	// A version 0 publication with another manifest name.
	task = srv.RunTask(t, http.MethodPost, "publications/file/file/", map[string]any{"repository_version": rh + "versions/0/", "manifest": "LISTING"})
	pub0 := srv.JSON(t, http.MethodGet, one(t, created(task, "/publications/")), nil, http.StatusOK)
	if pub0["manifest"] != "LISTING" || pub0["repository_version"] != rh+"versions/0/" {
		t.Fatalf("publication of version 0: %v", pub0)
	}

	t.Run("bad publication requests", func(t *testing.T) {
		for _, c := range []struct {
			body  map[string]any
			field string
		}{
			{map[string]any{}, "non_field_errors"},
			{map[string]any{"repository": rh, "repository_version": rh + "versions/1/"}, "non_field_errors"},
			{map[string]any{"repository_version": rh + "versions/9/"}, "repository_version"},
			{map[string]any{"repository": "/pulp/api/v3/repositories/file/file/0190c8a4-0000-7000-8000-000000000000/"}, "repository"},
			{map[string]any{"repository": rh, "bogus": 1}, "bogus"},
			{map[string]any{"repository": nil}, "repository"},
			{map[string]any{"repository_version": "/pulp/api/v3/tasks/0190c8a4-0000-7000-8000-000000000000/"}, "repository_version"},
			{map[string]any{"repository": rh, "manifest": 7}, "manifest"},
		} {
			body := srv.JSON(t, http.MethodPost, "publications/file/file/", c.body, http.StatusBadRequest)
			if _, ok := body[c.field]; !ok {
				t.Errorf("%v: error %v does not name %s", c.body, body, c.field)
			}
		}
	})

	// A header guard, and a distribution of the publication behind it.
	guard := srv.JSON(t, http.MethodPost, "contentguards/core/header/", map[string]any{"name": "g", "header_name": "x-token", "header_value": "s3cret"}, http.StatusCreated)
	if guard["header_name"] != "x-token" || !strings.HasPrefix(guard["pulp_href"].(string), "/pulp/api/v3/contentguards/core/header/") {
		t.Fatalf("guard %v", guard)
	}
	redirect := srv.JSON(t, http.MethodPost, "contentguards/core/content_redirect/", map[string]any{"name": "r"}, http.StatusCreated)
	if _, leaked := redirect["shared_secret"]; leaked {
		t.Fatalf("the redirect guard shows its secret: %v", redirect)
	}
	task = srv.RunTask(t, http.MethodPost, "distributions/file/file/", map[string]any{
		"name": "few", "base_path": "few/stable", "publication": pubHref, "content_guard": guard["pulp_href"]})
	distHref := one(t, created(task, "/distributions/file/file/"))
	dist := srv.JSON(t, http.MethodGet, distHref, nil, http.StatusOK)
	if dist["publication"] != pubHref || dist["content_guard"] != guard["pulp_href"] || dist["repository"] != nil ||
		!strings.HasSuffix(dist["base_url"].(string), "/pulp/content/few/stable/") || dist["hidden"] != false {
		t.Fatalf("distribution %v", dist)
	}

	t.Run("bad distribution requests", func(t *testing.T) {
		for _, c := range []struct {
			body  map[string]any
			field string
		}{
			{map[string]any{"name": "x", "base_path": "/abs"}, "base_path"},
			{map[string]any{"name": "x", "base_path": "a/../b"}, "base_path"},
			{map[string]any{"name": "x", "base_path": "few/stable"}, "base_path"},
			{map[string]any{"name": "few", "base_path": "other"}, "name"},
			{map[string]any{"name": "x"}, "base_path"},
			{map[string]any{"name": "x", "base_path": "x", "repository": rh, "publication": pubHref}, "non_field_errors"},
			{map[string]any{"name": "x", "base_path": "x", "repository_version": rh + "versions/7/"}, "repository_version"},
			{map[string]any{"name": "x", "base_path": "x", "content_guard": "/pulp/api/v3/contentguards/core/header/0190c8a4-0000-7000-8000-000000000000/"}, "content_guard"},
		} {
			body := srv.JSON(t, http.MethodPost, "distributions/file/file/", c.body, http.StatusBadRequest)
			if _, ok := body[c.field]; !ok {
				t.Errorf("%v: error %v does not name %s", c.body, body, c.field)
			}
		}
	})

	// PATCH switches the distribution to the repository; the publication goes.
	srv.RunTask(t, http.MethodPatch, distHref, map[string]any{"repository": rh, "hidden": true})
	dist = srv.JSON(t, http.MethodGet, distHref, nil, http.StatusOK)
	if dist["repository"] != rh || dist["publication"] != nil || dist["hidden"] != true || dist["content_guard"] != guard["pulp_href"] {
		t.Fatalf("patched distribution %v", dist)
	}
	if n := srv.JSON(t, http.MethodGet, "distributions/?base_path=few/stable", nil, http.StatusOK)["count"].(float64); n != 1 {
		t.Fatalf("distributions by base_path: %v", n)
	}

	t.Run("content from an artifact, a file and an upload", func(t *testing.T) {
		body := []byte("uploaded by hand\n")
		sum := sha256.Sum256(body)
		digest := hex.EncodeToString(sum[:])
		art := srv.JSON(t, http.MethodPost, "artifacts/", harness.Form{Files: map[string]harness.File{"file": {Data: body}}}, http.StatusCreated)
		task := srv.RunTask(t, http.MethodPost, "content/file/files/", map[string]any{
			"relative_path": "hand/made.txt", "artifact": art["pulp_href"], "repository": rh})
		unitHref := one(t, created(task, "/content/file/files/"))
		unit := srv.JSON(t, http.MethodGet, unitHref, nil, http.StatusOK)
		if unit["sha256"] != digest || unit["relative_path"] != "hand/made.txt" {
			t.Fatalf("unit %v", unit)
		}
		if v := one(t, created(task, "/versions/")); v != rh+"versions/2/" {
			t.Fatalf("new version %s", v)
		}
		if n := files(t, srv, rh+"versions/2/"); n != 4 {
			t.Fatalf("version 2 holds %v files", n)
		}
		// The same unit again is the same unit.
		again := srv.RunTask(t, http.MethodPost, "content/file/files/", map[string]any{"relative_path": "hand/made.txt", "artifact": art["pulp_href"]})
		if one(t, created(again, "/content/")) != unitHref {
			t.Fatalf("re-creating made another unit: %v", again["created_resources"])
		}
		// A multipart file becomes an artifact and a unit.
		task = srv.RunTask(t, http.MethodPost, "content/file/files/", harness.Form{
			Fields: map[string]string{"relative_path": "form/file.txt"},
			Files:  map[string]harness.File{"file": {Data: []byte("from a form\n")}}})
		unit = srv.JSON(t, http.MethodGet, one(t, created(task, "/content/")), nil, http.StatusOK)
		if unit["relative_path"] != "form/file.txt" {
			t.Fatalf("form unit %v", unit)
		}
		// A chunked upload.
		up := srv.JSON(t, http.MethodPost, "uploads/", map[string]any{"size": 6}, http.StatusCreated)
		resp, data := srv.Do(http.MethodPut, up["pulp_href"].(string), harness.Form{Files: map[string]harness.File{"file": {Data: []byte("chunk\n")}}},
			http.Header{"Content-Range": {"bytes 0-5/6"}})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("upload chunk: %d %s", resp.StatusCode, data)
		}
		task = srv.RunTask(t, http.MethodPost, "content/file/files/", map[string]any{"relative_path": "up/chunk.txt", "upload": up["pulp_href"]})
		unit = srv.JSON(t, http.MethodGet, one(t, created(task, "/content/")), nil, http.StatusOK)
		cs := sha256.Sum256([]byte("chunk\n"))
		if unit["sha256"] != hex.EncodeToString(cs[:]) {
			t.Fatalf("upload unit %v", unit)
		}
		srv.JSON(t, http.MethodGet, up["pulp_href"].(string), nil, http.StatusNotFound)

		for _, c := range []struct {
			body  map[string]any
			field string
		}{
			{map[string]any{"relative_path": "x"}, "non_field_errors"},
			{map[string]any{"relative_path": "../x", "artifact": art["pulp_href"]}, "relative_path"},
			{map[string]any{"artifact": art["pulp_href"]}, "relative_path"},
			{map[string]any{"relative_path": "x", "artifact": art["pulp_href"], "sha256": digest}, "sha256"},
			{map[string]any{"relative_path": "x", "artifact": "/pulp/api/v3/artifacts/0190c8a4-0000-7000-8000-000000000000/"}, "artifact"},
		} {
			body := srv.JSON(t, http.MethodPost, "content/file/files/", c.body, http.StatusBadRequest)
			if _, ok := body[c.field]; !ok {
				t.Errorf("%v: error %v does not name %s", c.body, body, c.field)
			}
		}
	})

	t.Run("autopublish", func(t *testing.T) {
		auto := srv.JSON(t, http.MethodPost, "repositories/file/file/", map[string]any{"name": "auto", "autopublish": true, "manifest": "INDEX"}, http.StatusCreated)
		ah := auto["pulp_href"].(string)
		art := srv.JSON(t, http.MethodPost, "artifacts/", harness.Form{Files: map[string]harness.File{"file": {Data: []byte("auto\n")}}}, http.StatusCreated)
		task := srv.RunTask(t, http.MethodPost, "content/file/files/", map[string]any{"relative_path": "a.txt", "artifact": art["pulp_href"], "repository": ah})
		p := srv.JSON(t, http.MethodGet, one(t, created(task, "/publications/file/file/")), nil, http.StatusOK)
		if p["repository_version"] != ah+"versions/1/" || p["manifest"] != "INDEX" {
			t.Fatalf("autopublished %v", p)
		}
	})

	// Deleting the publication leaves distributions that served it empty;
	// deleting the distribution is a task.
	resp, _ := srv.DELETE(pubHref, nil)
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("delete publication: %d", resp.StatusCode)
	}
	srv.JSON(t, http.MethodGet, pubHref, nil, http.StatusNotFound)
	srv.RunTask(t, http.MethodDelete, distHref, nil)
	srv.JSON(t, http.MethodGet, distHref, nil, http.StatusNotFound)
	names := []string{}
	for _, d := range srv.JSON(t, http.MethodGet, "contentguards/", nil, http.StatusOK)["results"].([]any) {
		names = append(names, d.(map[string]any)["name"].(string))
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"g", "r"}) {
		t.Fatalf("guards %v", names)
	}
}

func files(t *testing.T, srv *harness.Server, versionHref string) float64 {
	t.Helper()
	return srv.JSON(t, http.MethodGet, "content/file/files/?repository_version="+versionHref, nil, http.StatusOK)["count"].(float64)
}
