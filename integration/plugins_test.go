package integration

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pulpo/pulpo/host/plugin/plugintest"
	"github.com/pulpo/pulpo/integration/harness"
)

// TestPluginTypesBecomeEndpoints loads a Go test plugin into the real binary
// and checks that its describe turns into components, endpoints and OpenAPI
// operations that work.
func TestPluginTypesBecomeEndpoints(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := plugintest.BuildGo(t.Context(), "./plugins/testdata/goplugin", filepath.Join(dir, "testplug.wasm")); err != nil {
		t.Fatal(err)
	}
	out, err := harness.Exec(t, nil, "plugins", "--plugin-dir", dir, "--data-dir", t.TempDir())
	if err != nil || !strings.Contains(out, "testplug") || !strings.Contains(out, "testplug.item") {
		t.Fatalf("pulpo plugins: %v\n%s", err, out)
	}

	srv := harness.Start(t, harness.Options{PluginDirs: []string{dir}})
	status := srv.JSON(t, http.MethodGet, "status/", nil, http.StatusOK)
	found := false
	for _, v := range status["versions"].([]any) {
		found = found || v.(map[string]any)["component"] == "testplug"
	}
	if !found {
		t.Fatalf("status versions lack the plugin: %v", status["versions"])
	}
	resp, body := srv.GET("docs/api.json", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("docs: %d", resp.StatusCode)
	}
	var doc struct {
		Info struct {
			Versions map[string]string `json:"x-pulp-app-versions"`
		} `json:"info"`
		Paths map[string]map[string]struct {
			OperationID string `json:"operationId"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	ops := map[string]bool{}
	for _, methods := range doc.Paths {
		for _, op := range methods {
			ops[op.OperationID] = true
		}
	}
	for _, want := range []string{"repositories_testplug_repo_create", "repositories_testplug_repo_modify",
		"content_testplug_items_list", "content_testplug_labels_read"} {
		if !ops[want] {
			t.Errorf("OpenAPI lacks %s", want)
		}
	}
	if doc.Info.Versions["testplug"] == "" {
		t.Errorf("x-pulp-app-versions lacks the plugin: %v", doc.Info.Versions)
	}
	repo := srv.JSON(t, http.MethodPost, "repositories/testplug/repo/", map[string]any{"name": "plug-repo"}, http.StatusCreated)
	if !strings.HasPrefix(repo["pulp_href"].(string), "/pulp/api/v3/repositories/testplug/repo/") {
		t.Fatalf("repository %v", repo)
	}
	srv.JSON(t, http.MethodGet, "content/testplug/items/", nil, http.StatusOK)
	srv.JSON(t, http.MethodPost, "repositories/testplug/repo/", map[string]any{"name": "plug-repo"}, http.StatusBadRequest)
}
