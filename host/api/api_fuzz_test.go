package api

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/pulpo/pulpo/host/href"
)

// fuzzFilters declares one filter of every kind, as the list endpoints do.
var fuzzFilters = append(append(append(commonFilters(), textFilters("name")...), timeFilters("pulp_created", "created")...), //nolint:gochecknoglobals // test table
	filter{Param: "number", Field: "number", Kind: kInt},
	filter{Param: "flag", Field: "flag", Kind: kBool},
	filter{Param: "id", Field: "id", Kind: kUUID},
	filter{Param: "remote", Field: "remote_id", Kind: kHref},
	filter{Param: "repository_version", Field: "version", Kind: kVersion},
	filter{Param: "pulp_label_select", Field: "pulp_label_select", Kind: kRaw},
)

var fuzzOrderable = []string{"name", "pulp_created"} //nolint:gochecknoglobals // test table

// badRequest checks that err is the API's 400 naming only fields in allowed (or a
// "detail" when allowed is nil), and returns the named fields.
func badRequest(t *testing.T, what string, err error, allowed func(string) bool) {
	t.Helper()
	var ae *Error
	if !errors.As(err, &ae) || ae.Status < 400 || ae.Status > 499 {
		t.Fatalf("%s: error %v is not an API 4xx", what, err)
	}
	switch b := ae.Body.(type) {
	case map[string][]string:
		if len(b) == 0 {
			t.Fatalf("%s: 400 names no field", what)
		}
		for k, msgs := range b {
			if allowed == nil || !allowed(k) || len(msgs) == 0 || slices.Contains(msgs, "") {
				t.Fatalf("%s: error names field %q with %q", what, k, msgs)
			}
		}
	case map[string]string:
		if b["detail"] == "" || len(b) != 1 {
			t.Fatalf("%s: error body %v", what, b)
		}
	default:
		t.Fatalf("%s: error body %T", what, ae.Body)
	}
}

// FuzzParseList feeds raw query strings to the list parser: a bad value is a 400 naming
// the parameter, and what is accepted stays in bounds (page size, offset, orderable
// fields, one filter per declared parameter).
func FuzzParseList(f *testing.F) {
	for _, q := range []string{
		"", "limit=10&offset=20", "limit=0", "limit=-1", "limit=99999999", "offset=-5", "limit=1e3",
		"ordering=-name,pulp_created", "ordering=--name", "ordering=name,", "ordering=bogus",
		"name__in=a,,b&name__icontains=%25_", "pulp_created__gte=2024-01-02", "pulp_created=2024-01-02T03:04:05.123456789Z",
		"pulp_created__lt=yesterday", "number=12", "number=1.5", "flag=TRUE", "flag=yes", "id=not-a-uuid",
		"pulp_id__in=01900000-0000-7000-8000-000000000001,x",
		"pulp_href__in=/pulp/api/v3/artifacts/01900000-0000-7000-8000-000000000001/",
		"remote=/pulp/api/v3/remotes/file/file/01900000-0000-7000-8000-000000000001/",
		"repository_version=/pulp/api/v3/repositories/file/file/01900000-0000-7000-8000-000000000001/versions/0/",
		"repository_version=/pulp/api/v3/repositories/file/file/01900000-0000-7000-8000-000000000001/",
		"fields=name,pulp_href&exclude_fields=name", "pulp_label_select=a%3D1,!b", "limit=1&limit=x", "%zz=1",
	} {
		f.Add(q)
	}
	known := map[string]bool{"limit": true, "offset": true, "ordering": true}
	for _, fl := range fuzzFilters {
		known[fl.Param] = true
	}
	f.Fuzz(func(t *testing.T, rawQuery string) {
		r := httptest.NewRequest(http.MethodGet, "/pulp/api/v3/x/", nil)
		r.URL.RawQuery = rawQuery
		lq, err := parseList(r, fuzzFilters, fuzzOrderable)
		if err != nil {
			badRequest(t, "parseList("+rawQuery+")", err, func(k string) bool { return known[k] })
			return
		}
		if lq.Limit < 1 || lq.Limit > maxLimit || lq.Offset < 0 {
			t.Fatalf("parseList(%q): limit %d offset %d", rawQuery, lq.Limit, lq.Offset)
		}
		for _, o := range lq.Ordering {
			if !slices.Contains(fuzzOrderable, strings.TrimPrefix(o, "-")) {
				t.Fatalf("parseList(%q): ordering %q", rawQuery, o)
			}
		}
		if len(lq.Filters) > len(fuzzFilters) {
			t.Fatalf("parseList(%q): %d filters from %d declared", rawQuery, len(lq.Filters), len(fuzzFilters))
		}
		for _, fl := range lq.Filters {
			if fl.Value == nil {
				t.Fatalf("parseList(%q): filter %+v without value", rawQuery, fl)
			}
			if s, ok := fl.Value.([]string); ok && slices.Contains(s, "") {
				t.Fatalf("parseList(%q): empty list element in %+v", rawQuery, fl)
			}
		}
	})
}

// FuzzParseContentRange checks the chunk upload header: an accepted range lies inside the
// upload, anything else is a 400 naming Content-Range.
func FuzzParseContentRange(f *testing.F) {
	for _, s := range []struct {
		h    string
		size int64
	}{
		{"bytes 0-9/10", 10}, {"bytes 0-9/*", 10}, {"bytes 5-4/10", 10}, {"bytes 0-10/10", 10},
		{"bytes 0-0/0", 0}, {"bytes 0-9/11", 10}, {" bytes 1-2/* ", 3}, {"bytes 9223372036854775807-9223372036854775807/*", 1<<63 - 1},
		{"bytes 99999999999999999999-1/*", 10}, {"bytes -1-2/10", 10}, {"bytes 0-1/10\n", 10},
	} {
		f.Add(s.h, s.size)
	}
	f.Fuzz(func(t *testing.T, h string, size int64) {
		start, end, err := parseContentRange(h, size)
		if err != nil {
			badRequest(t, "parseContentRange("+h+")", err, func(k string) bool { return k == "Content-Range" })
			return
		}
		if start < 0 || start > end || end >= size {
			t.Fatalf("parseContentRange(%q, %d) = %d-%d: outside the upload", h, size, start, end)
		}
	})
}

// FuzzDecodeBody sends arbitrary bodies through the JSON decoding every write endpoint
// uses, then through the typed field readers: nothing panics, every refusal is a 4xx
// whose body names a field of the request (or gives a detail), and what is accepted
// has the type asked for.
func FuzzDecodeBody(f *testing.F) {
	for _, b := range []string{
		``, `{}`, `[]`, `null`, `"x"`, `{"name":"a"}`, `{"name":1}`, `{"name":null}`, `{"a":1}{"b":2}`, `{"a":1} x`,
		`{"retain_repo_versions":-1,"pulp_labels":{"":"x"}}`, `{"pulp_labels":{"k":1}}`, `{"pulp_labels":null}`,
		`{"remote":"/pulp/api/v3/remotes/file/file/01900000-0000-7000-8000-000000000001/"}`,
		`{"remote":"/pulp/api/v3/repositories/file/file/01900000-0000-7000-8000-000000000001/versions/1/"}`,
		`{"add_content_units":["*"],"base_version":null}`, `{"add_content_units":"x"}`, `{"size":1e400}`,
		"{\"name\":\"\xff\"}", `{"name":"a","name":"b"}`, `{`, `{"mirror":"true"}`, `{"":1}`,
	} {
		f.Add([]byte(b), "application/json")
	}
	f.Add([]byte(`{}`), "text/plain")
	f.Add([]byte(`{}`), "application/vnd.pulp+json; charset=utf-8")
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		newReq := func() (*httptest.ResponseRecorder, *http.Request) {
			r := httptest.NewRequest(http.MethodPost, "/pulp/api/v3/x/", bytes.NewReader(body))
			r.Header.Set("Content-Type", contentType)
			return httptest.NewRecorder(), r
		}
		w, r := newReq()
		o, err := decodeObject(w, r)
		if err != nil {
			badRequest(t, "decodeObject", err, nil)
		} else {
			fe := fieldErrors{}
			present := func(k string) bool { _, ok := o[k]; return ok }
			o.unexpected(fe, map[string]bool{"name": true})
			if s, _ := o.str(fe, "name", false); s != nil && !strings.Contains(string(o["name"]), `"`) {
				t.Fatalf("str accepted %s", o["name"])
			}
			if n, _ := o.integer(fe, "retain_repo_versions", true, 1); n != nil && *n < 1 {
				t.Fatalf("integer accepted %d below its minimum", *n)
			}
			if m, ok := o.labels(fe, "pulp_labels"); ok && m != nil {
				for k := range m {
					if k == "" && len(fe["pulp_labels"]) == 0 {
						t.Fatal("labels accepted an empty key")
					}
				}
			}
			if ref, _ := o.hrefOf(fe, "remote", href.Remotes); ref != nil && (ref.Master != href.Remotes || ref.IsVersion()) {
				t.Fatalf("hrefOf accepted %+v", ref)
			}
			if err := fe.err(); err != nil {
				badRequest(t, "fields", err, present)
			}
		}
		w, r = newReq()
		var mb modifyBody
		if err := decodeJSON(w, r, &mb); err != nil {
			badRequest(t, "decodeJSON(modifyBody)", err, func(string) bool { return true }) // an unknown field is named as sent, even ""
		}
	})
}
