package openapi

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func ok(desc string, s *Schema) map[int]Response {
	return map[int]Response{200: {Description: desc, Schema: s}}
}

func TestAdd(t *testing.T) {
	t.Parallel()
	str := &Schema{Type: "string"}
	type route struct {
		method, path string
		op           Operation
	}
	tests := []struct {
		name    string
		routes  []route
		wantErr string // substring of the last Add's error; "" for none
	}{
		{"ok", []route{
			{"GET", "/a/", Operation{ID: "a_list", Responses: ok("OK", str)}},
			{"post", "/a/", Operation{ID: "a_create", Responses: ok("OK", str)}},
		}, ""},
		{"duplicate operationId", []route{
			{"GET", "/a/", Operation{ID: "a_list", Responses: ok("OK", str)}},
			{"GET", "/b/", Operation{ID: "a_list", Responses: ok("OK", str)}},
		}, `duplicate operationId "a_list"`},
		{"duplicate route", []route{
			{"GET", "/a/{id}/", Operation{ID: "one", Responses: ok("OK", str)}},
			{"GET", "/a/{id}/{$}", Operation{ID: "two", Responses: ok("OK", str)}},
		}, "duplicate route"},
		{"empty operationId", []route{{"GET", "/a/", Operation{Responses: ok("OK", str)}}}, "empty operationId"},
		{"unknown method", []route{{"FETCH", "/a/", Operation{ID: "x", Responses: ok("OK", str)}}}, "unknown method"},
		{"method in path", []route{{"GET", "GET /a/", Operation{ID: "x", Responses: ok("OK", str)}}}, "must start with /"},
		{"partial wildcard", []route{{"GET", "/a/x{id}/", Operation{ID: "x", Responses: ok("OK", str)}}}, "whole segment"},
		{"multi not last", []route{{"GET", "/a/{p...}/b", Operation{ID: "x", Responses: ok("OK", str)}}}, "last segment"},
		{"repeated wildcard", []route{{"GET", "/{a}/{a}/", Operation{ID: "x", Responses: ok("OK", str)}}}, "repeated wildcard"},
		{"path param not in path", []route{{"GET", "/a/", Operation{ID: "x", Params: []Param{PathParam("id", "")}, Responses: ok("OK", str)}}}, `"id" is not in the path`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := NewBuilder(Info{Title: "t", Version: "v3"})
			var err error
			for i, r := range tt.routes {
				err = b.Add(r.method, r.path, r.op)
				if i < len(tt.routes)-1 && err != nil {
					t.Fatalf("route %d: %v", i, err)
				}
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("no error, want %q", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("error %q, want it to contain %q", err, tt.wantErr)
			}
			if tt.wantErr == "" {
				if err := Validate(b.Doc()); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func TestAddPathParams(t *testing.T) {
	t.Parallel()
	b := NewBuilder(Info{Title: "t", Version: "v3"})
	q := QueryParam("fields", "array", "Fields to include.")
	declared := Param{Name: "pulp_id", In: "path", Description: "The ID.", Schema: &Schema{Type: "string", Format: "uuid"}} // Required left false on purpose
	routes := []struct {
		method, pattern string
		params          []Param
		wantPath        string
		want            string // JSON of the resulting parameters
	}{
		{"GET", "/pulp/api/v3/artifacts/{pulp_id}/", []Param{q},
			"/pulp/api/v3/artifacts/{pulp_id}/",
			`[{"name":"pulp_id","in":"path","required":true,"schema":{"type":"string"}},{"name":"fields","in":"query","description":"Fields to include.","schema":{"type":"array","items":{"type":"string"}},"style":"form","explode":false}]`},
		{"DELETE", "/pulp/api/v3/artifacts/{pulp_id}/{$}", []Param{declared},
			"/pulp/api/v3/artifacts/{pulp_id}/",
			`[{"name":"pulp_id","in":"path","description":"The ID.","required":true,"schema":{"type":"string","format":"uuid"}}]`},
		{"GET", "/pulp/content/{base_path}/{path...}", nil,
			"/pulp/content/{base_path}/{path}",
			`[{"name":"base_path","in":"path","required":true,"schema":{"type":"string"}},{"name":"path","in":"path","required":true,"schema":{"type":"string"}}]`},
	}
	for i, r := range routes {
		op := Operation{ID: "op" + string(rune('a'+i)), Params: r.params, Responses: ok("OK", &Schema{Type: "string"})}
		if err := b.Add(r.method, r.pattern, op); err != nil {
			t.Fatalf("%s %s: %v", r.method, r.pattern, err)
		}
	}
	d := b.Doc()
	if err := Validate(d); err != nil {
		t.Fatal(err)
	}
	for _, r := range routes {
		item := d.Paths[r.wantPath]
		if item == nil {
			t.Fatalf("no path %q in %v", r.wantPath, d.Paths)
		}
		if got := mustJSON(t, (*item.slot(r.method)).Params); got != r.want {
			t.Errorf("%s %s params\n got %s\nwant %s", r.method, r.pattern, got, r.want)
		}
	}
}

func TestDocJSON(t *testing.T) {
	t.Parallel()
	build := func(reverse bool) []byte {
		b := NewBuilder(Info{
			Title: "Pulp 3 API", Version: "v3",
			AppVersions: map[string]string{"core": "0.1.0", "file": "0.1.0"},
			Extensions:  map[string]any{"x-pulp-domain-enabled": false},
		})
		b.SecurityScheme("basicAuth", SecurityScheme{Type: "http", Scheme: "basic"})
		b.Security(SecurityRequirement{"basicAuth": nil})
		art := b.SchemaOf("ArtifactResponse", child{})
		adds := []func() error{
			func() error {
				return b.Add("GET", "/pulp/api/v3/artifacts/", Operation{
					ID: "artifacts_list", Tags: []string{"Artifacts"},
					Params:    []Param{QueryParam("limit", "integer", "Number of results to return per page.")},
					Responses: ok("OK", PaginatedList(art)),
				})
			},
			func() error {
				return b.Add("POST", "/pulp/api/v3/artifacts/", Operation{
					ID: "artifacts_create", Tags: []string{"Artifacts"},
					Body: &Body{Required: true, Content: map[string]*Schema{
						"multipart/form-data":               {Type: "object", Properties: map[string]*Schema{"file": {Type: "string", Format: "binary"}}},
						"application/x-www-form-urlencoded": {Type: "object"},
					}},
					Responses: map[int]Response{201: {Description: "Created", Schema: art, Headers: map[string]*Schema{"Location": {Type: "string"}}}, 400: b.ErrorResponse("Bad request")},
				})
			},
			func() error {
				return b.Add("DELETE", "/pulp/api/v3/artifacts/{pulp_id}/", Operation{
					ID: "artifacts_delete", Tags: []string{"Artifacts"},
					Responses: map[int]Response{204: {Description: "No response body"}},
				})
			},
			func() error {
				return b.Add("GET", "/pulp/api/v3/status/", Operation{
					ID: "status_read", Security: []SecurityRequirement{{}},
					Responses: map[int]Response{202: {Description: "Task", Schema: b.AsyncOperation()}},
				})
			},
		}
		for i := range adds {
			if reverse {
				i = len(adds) - 1 - i
			}
			if err := adds[i](); err != nil {
				t.Fatal(err)
			}
		}
		d := b.Doc()
		if err := Validate(d); err != nil {
			t.Fatal(err)
		}
		out, err := d.JSON()
		if err != nil {
			t.Fatal(err)
		}
		again, err := d.JSON()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, again) {
			t.Fatal("two marshals of one Doc differ")
		}
		return out
	}
	out := build(false)
	if rev := build(true); !bytes.Equal(out, rev) {
		t.Fatalf("output depends on registration order:\n%s\n%s", out, rev)
	}

	var doc struct {
		OpenAPI string `json:"openapi"`
		Info    struct {
			Title       string            `json:"title"`
			AppVersions map[string]string `json:"x-pulp-app-versions"`
			Domain      *bool             `json:"x-pulp-domain-enabled"`
		} `json:"info"`
		Paths map[string]map[string]struct {
			OperationID string                     `json:"operationId"`
			Responses   map[string]json.RawMessage `json:"responses"`
			RequestBody struct {
				Content map[string]json.RawMessage `json:"content"`
			} `json:"requestBody"`
		} `json:"paths"`
		Components struct {
			Schemas         map[string]json.RawMessage `json:"schemas"`
			SecuritySchemes map[string]json.RawMessage `json:"securitySchemes"`
		} `json:"components"`
		Security []map[string][]string `json:"security"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("invalid JSON: %v\n%s", err, out)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"openapi", doc.OpenAPI, "3.0.3"},
		{"title", doc.Info.Title, "Pulp 3 API"},
		{"core version", doc.Info.AppVersions["core"], "0.1.0"},
		{"file version", doc.Info.AppVersions["file"], "0.1.0"},
		{"domain extension", doc.Info.Domain != nil && !*doc.Info.Domain, true},
		{"list id", doc.Paths["/pulp/api/v3/artifacts/"]["get"].OperationID, "artifacts_list"},
		{"create id", doc.Paths["/pulp/api/v3/artifacts/"]["post"].OperationID, "artifacts_create"},
		{"delete id", doc.Paths["/pulp/api/v3/artifacts/{pulp_id}/"]["delete"].OperationID, "artifacts_delete"},
		{"multipart body", doc.Paths["/pulp/api/v3/artifacts/"]["post"].RequestBody.Content["multipart/form-data"] != nil, true},
		{"201 body", string(doc.Paths["/pulp/api/v3/artifacts/"]["post"].Responses["201"]),
			`{"description":"Created","headers":{"Location":{"schema":{"type":"string"}}},"content":{"application/json":{"schema":{"$ref":"#/components/schemas/ArtifactResponse"}}}}`},
		{"204 body", string(doc.Paths["/pulp/api/v3/artifacts/{pulp_id}/"]["delete"].Responses["204"]), `{"description":"No response body"}`},
		{"component", doc.Components.Schemas["ArtifactResponse"] != nil, true},
		{"error component", doc.Components.Schemas[ErrorComponent] != nil, true},
		{"security scheme", string(doc.Components.SecuritySchemes["basicAuth"]), `{"type":"http","scheme":"basic"}`},
		{"security", mustJSON(t, doc.Security), `[{"basicAuth":[]}]`},
		{"optional auth", strings.Contains(string(out), `"security":[{}]`), true},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestDocEmptyComponents(t *testing.T) {
	t.Parallel()
	out, err := NewBuilder(Info{Title: "t", Version: "v3"}).Doc().JSON()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"openapi":"3.0.3","info":{"title":"t","version":"v3","x-pulp-app-versions":{}},"paths":{},"components":{"schemas":{}}}`
	if string(out) != want {
		t.Errorf("got  %s\nwant %s", out, want)
	}
}

func TestDocIsSnapshot(t *testing.T) {
	t.Parallel()
	b := NewBuilder(Info{Title: "t", Version: "v3"})
	if err := b.Add("GET", "/a/", Operation{ID: "a", Responses: ok("OK", &Schema{})}); err != nil {
		t.Fatal(err)
	}
	d := b.Doc()
	if err := b.Add("POST", "/a/", Operation{ID: "b", Responses: ok("OK", &Schema{})}); err != nil {
		t.Fatal(err)
	}
	b.Component("Later", &Schema{})
	if d.Paths["/a/"].Post != nil || d.Components.Schemas["Later"] != nil {
		t.Error("a Doc changed after later Builder calls")
	}
}
