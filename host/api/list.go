package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/pulpo/pulpo/host/db"
	"github.com/pulpo/pulpo/host/href"
	"github.com/pulpo/pulpo/host/openapi"
)

// defaultLimit is Pulp's PAGE_SIZE.
const defaultLimit = 100

// maxLimit bounds one page so a client cannot ask for a million rows at once.
const maxLimit = 5000

// Value kinds of filter parameters.
const (
	kString  = "string"
	kInt     = "integer"
	kBool    = "boolean"
	kTime    = "date-time"
	kUUID    = "uuid"
	kHref    = "href"         // an href whose id is the value
	kVersion = "version-href" // a repository version href -> db.VersionRef
	kStrings = "string-list"  // comma-separated
	kHrefs   = "href-list"    // comma-separated hrefs -> ids
	kRaw     = "raw"          // passed through as text
)

// filter declares one query parameter of a list: its name, the db field and
// lookup it becomes, and how its value is parsed. The same declarations
// produce the OpenAPI parameters.
type filter struct {
	Param string
	Field string
	Op    string
	Kind  string
	Doc   string
}

// textFilters declares Pulp's usual lookups on a text field.
func textFilters(field string, ops ...string) []filter {
	if len(ops) == 0 {
		ops = []string{"", "in", "contains", "icontains", "startswith", "iexact"}
	}
	out := make([]filter, 0, len(ops))
	for _, op := range ops {
		f := filter{Param: field, Field: field, Op: op, Kind: kString, Doc: "Filter results where " + field + " matches value"}
		if op != "" {
			f.Param = field + "__" + op
			f.Doc = "Filter results where " + field + " " + op + " value"
		}
		if op == "in" {
			f.Kind = kStrings
			f.Doc = "Multiple values may be separated by commas."
		}
		out = append(out, f)
	}
	return out
}

// timeFilters declares comparison lookups on a timestamp field.
func timeFilters(param, field string) []filter {
	var out []filter
	for _, op := range []string{"", "gt", "gte", "lt", "lte"} {
		p := param
		if op != "" {
			p += "__" + op
		}
		out = append(out, filter{Param: p, Field: field, Op: op, Kind: kTime, Doc: "Filter results where " + param + " " + map[string]string{"": "equals", "gt": "is after", "gte": "is at or after", "lt": "is before", "lte": "is at or before"}[op] + " value"})
	}
	return out
}

// commonFilters are on every Pulp list.
func commonFilters() []filter {
	return []filter{
		{Param: "pulp_id__in", Field: "pulp_id", Op: "in", Kind: kStrings, Doc: "Multiple values may be separated by commas."},
		{Param: "pulp_href__in", Field: "pulp_id", Op: "in", Kind: kHrefs, Doc: "Multiple values may be separated by commas."},
	}
}

// typeFilters are the pulp_type filters of lists spanning several types.
func typeFilters() []filter {
	return []filter{
		{Param: "pulp_type", Field: "pulp_type", Kind: kString, Doc: "Pulp type"},
		{Param: "pulp_type__in", Field: "pulp_type", Op: "in", Kind: kStrings, Doc: "Pulp type is in"},
	}
}

// listOf serves a list endpoint: it parses the declared filters, narrows
// the list to pulpType when one is given, fetches a page and renders it.
func listOf[T any](filters []filter, ordering []string, pulpType string,
	fetch func(context.Context, db.ListParams) (db.Page[T], error), render func(T) any) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		lq, err := parseList(r, filters, ordering)
		if err != nil {
			return err
		}
		if pulpType != "" {
			lq.Filters = append(lq.Filters, db.Filter{Field: "pulp_type", Value: pulpType})
		}
		p, err := fetch(r.Context(), lq.ListParams)
		if err != nil {
			return err
		}
		return writePage(w, r, lq, p.Count, p.Items, render)
	}
}

// uniqueName answers 400 when another object listed by list has name.
func uniqueName[T any](r *http.Request, list func(context.Context, db.ListParams) (db.Page[T], error),
	idOf func(T) uuid.UUID, name string, self uuid.UUID) error {
	p, err := list(r.Context(), db.ListParams{Filters: []db.Filter{{Field: "name", Value: name}}, Limit: 1})
	if err != nil {
		return err
	}
	if len(p.Items) > 0 && idOf(p.Items[0]) != self {
		return fieldError("name", "This field must be unique.")
	}
	return nil
}

// typedFromPath loads the object named by the path's pulp_id; an object of
// another pulp_type does not exist at this path.
func typedFromPath[T any](r *http.Request, get func(context.Context, uuid.UUID) (T, error), typeOf func(T) string, want string) (T, error) {
	var zero T
	id, err := pathID(r)
	if err != nil {
		return zero, err
	}
	v, err := get(r.Context(), id)
	if err != nil {
		return zero, err
	}
	if typeOf(v) != want {
		return zero, errNotFound
	}
	return v, nil
}

// listQuery is a parsed list request.
type listQuery struct {
	db.ListParams
	sel fieldSelection
}

// parseList reads pagination, ordering, field selection and the declared
// filters. Unknown parameters are ignored, as DRF does; bad values of known
// ones are a 400 naming the parameter.
func parseList(r *http.Request, filters []filter, orderable []string) (listQuery, error) {
	q := r.URL.Query()
	lq := listQuery{ListParams: db.ListParams{Limit: defaultLimit}}
	fe := fieldErrors{}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			fe.add("limit", "A valid positive integer is required.")
		} else {
			lq.Limit = min(n, maxLimit)
		}
	}
	if v := q.Get("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			fe.add("offset", "A valid non-negative integer is required.")
		} else {
			lq.Offset = n
		}
	}
	if v := q.Get("ordering"); v != "" {
		for _, o := range strings.Split(v, ",") {
			if !slices.Contains(orderable, strings.TrimPrefix(o, "-")) {
				fe.add("ordering", "Select a valid choice. %s is not one of the available choices.", o)
				continue
			}
			lq.Ordering = append(lq.Ordering, o)
		}
	}
	lq.sel = parseSelection(q)
	for _, f := range filters {
		v, ok := q[f.Param]
		if !ok || len(v) == 0 {
			continue
		}
		val, err := parseFilterValue(f, v[len(v)-1])
		if err != "" {
			fe.add(f.Param, "%s", err)
			continue
		}
		lq.Filters = append(lq.Filters, db.Filter{Field: f.Field, Op: f.Op, Value: val})
	}
	if f, ok := scopeFilter(r.Context()); ok {
		lq.Filters = append(lq.Filters, f) // only what the user may view
	}
	return lq, fe.err()
}

func parseFilterValue(f filter, v string) (any, string) {
	switch f.Kind {
	case kString, kRaw:
		return v, ""
	case kInt:
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, "Enter a number."
		}
		return n, ""
	case kBool:
		switch strings.ToLower(v) {
		case "true", "1":
			return true, ""
		case "false", "0":
			return false, ""
		}
		return nil, "Enter true or false."
	case kTime:
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
			if t, err := time.Parse(layout, v); err == nil {
				return t, ""
			}
		}
		return nil, "Enter a valid date/time."
	case kUUID:
		id, err := uuid.Parse(v)
		if err != nil {
			return nil, "Enter a valid UUID."
		}
		return id, ""
	case kHref:
		ref, err := href.Parse(v)
		if err != nil || ref.IsVersion() {
			return nil, "Invalid href: " + v
		}
		return ref.ID, ""
	case kVersion:
		ref, err := href.Parse(v)
		if err != nil || !ref.IsVersion() {
			return nil, "Invalid repository version href: " + v
		}
		return db.VersionRef{Repository: ref.ID, Number: ref.Version}, ""
	case kStrings:
		parts := splitList(v)
		if f.Field == "pulp_id" {
			for _, p := range parts {
				if _, err := uuid.Parse(p); err != nil {
					return nil, "Enter a valid UUID: " + p
				}
			}
		}
		return parts, ""
	case kHrefs:
		var ids []string
		for _, p := range splitList(v) {
			ref, err := href.Parse(p)
			if err != nil {
				return nil, "Invalid href: " + p
			}
			ids = append(ids, ref.ID.String())
		}
		return ids, ""
	}
	return nil, "unsupported filter"
}

func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// fieldSelection is fields/exclude_fields.
type fieldSelection struct {
	fields  []string
	exclude []string
}

func parseSelection(q url.Values) fieldSelection {
	return fieldSelection{fields: splitList(q.Get("fields")), exclude: splitList(q.Get("exclude_fields"))}
}

func (s fieldSelection) empty() bool { return len(s.fields) == 0 && len(s.exclude) == 0 }

// apply returns v with only the selected top-level fields.
func (s fieldSelection) apply(v any) (any, error) {
	if s.empty() {
		return v, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return v, nil //nolint:nilerr // not an object: nothing to select
	}
	if len(s.fields) > 0 {
		for k := range m {
			if !slices.Contains(s.fields, k) {
				delete(m, k)
			}
		}
	}
	for _, k := range s.exclude {
		delete(m, k)
	}
	return m, nil
}

// page is Pulp's paginated list body.
type page struct {
	Count    int64   `json:"count"`
	Next     *string `json:"next"`
	Previous *string `json:"previous"`
	Results  []any   `json:"results"`
}

// writePage renders a page with absolute next/previous links, as DRF does.
func writePage[T any](w http.ResponseWriter, r *http.Request, lq listQuery, count int64, items []T, render func(T) any) error {
	p := page{Count: count, Results: make([]any, 0, len(items))}
	for _, it := range items {
		v, err := lq.sel.apply(render(it))
		if err != nil {
			return err
		}
		p.Results = append(p.Results, v)
	}
	link := func(offset int) *string {
		u := *r.URL
		u.Scheme, u.Host = requestScheme(r), r.Host
		q := u.Query()
		q.Set("limit", strconv.Itoa(lq.Limit))
		if offset <= 0 {
			q.Del("offset")
		} else {
			q.Set("offset", strconv.Itoa(offset))
		}
		u.RawQuery = q.Encode()
		s := u.String()
		return &s
	}
	if int64(lq.Offset+lq.Limit) < count {
		p.Next = link(lq.Offset + lq.Limit)
	}
	if lq.Offset > 0 {
		p.Previous = link(max(lq.Offset-lq.Limit, 0))
	}
	return writeJSON(w, http.StatusOK, p)
}

func requestScheme(r *http.Request) string {
	if p := r.Header.Get("X-Forwarded-Proto"); p == "https" || p == "http" {
		return p
	}
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

// listParams documents a list's query parameters in OpenAPI.
func listParams(filters []filter, orderable []string) []openapi.Param {
	ps := []openapi.Param{
		openapi.QueryParam("limit", "integer", "Number of results to return per page."),
		openapi.QueryParam("offset", "integer", "The initial index from which to return the results."),
		orderingParam(orderable),
		openapi.QueryParam("fields", "array", "A list of fields to include in the response."),
		openapi.QueryParam("exclude_fields", "array", "A list of fields to exclude from the response."),
	}
	seen := map[string]bool{}
	for _, f := range filters {
		if seen[f.Param] {
			continue
		}
		seen[f.Param] = true
		typ := "string"
		switch f.Kind {
		case kInt:
			typ = "integer"
		case kBool:
			typ = "boolean"
		case kStrings, kHrefs:
			typ = "array"
		}
		p := openapi.QueryParam(f.Param, typ, f.Doc)
		if f.Kind == kTime {
			p.Schema.Format = "date-time"
		}
		if f.Kind == kUUID {
			p.Schema.Format = "uuid"
		}
		ps = append(ps, p)
	}
	return ps
}

func orderingParam(orderable []string) openapi.Param {
	var enum []any
	for _, o := range orderable {
		enum = append(enum, o, "-"+o)
	}
	p := openapi.QueryParam("ordering", "array", "Which field to use when ordering the results.")
	if p.Schema != nil && p.Schema.Items != nil {
		p.Schema.Items.Enum = enum
	}
	return p
}
