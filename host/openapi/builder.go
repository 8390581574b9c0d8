package openapi

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
)

// Builder collects operations and component schemas into a [Doc].
type Builder struct {
	info     Info
	paths    map[string]*PathItem
	ids      map[string]string // operationId -> "METHOD path"
	schemas  map[string]*Schema
	types    map[typeKey]string // Go type and mode -> component name
	schemes  map[string]*SecurityScheme
	security []SecurityRequirement
	errs     []error
}

// NewBuilder returns an empty Builder for a document with the given info.
func NewBuilder(info Info) *Builder {
	info.AppVersions = maps.Clone(info.AppVersions)
	info.Extensions = maps.Clone(info.Extensions)
	return &Builder{
		info:    info,
		paths:   map[string]*PathItem{},
		ids:     map[string]string{},
		schemas: map[string]*Schema{},
		types:   map[typeKey]string{},
		schemes: map[string]*SecurityScheme{},
	}
}

// Add registers op for method and path. path uses net/http ServeMux
// wildcards, e.g. "/pulp/api/v3/artifacts/{pulp_id}/"; "{name...}" becomes
// "{name}" and a trailing "{$}" is dropped. Path parameters missing from
// op.Params are declared as required strings; declared ones are made
// required. Add fails on a duplicate operationId, a duplicate method and
// path, an unknown method, a malformed path, or a path parameter that is not
// in the path.
func (b *Builder) Add(method, path string, op Operation) error {
	method = strings.ToUpper(method)
	tmpl, names, err := templatePath(path)
	if err != nil {
		return err
	}
	where := method + " " + tmpl
	if op.ID == "" {
		return fmt.Errorf("%s: empty operationId", where)
	}
	if prev, ok := b.ids[op.ID]; ok {
		return fmt.Errorf("%s: duplicate operationId %q (already used by %s)", where, op.ID, prev)
	}
	item := b.paths[tmpl]
	if item == nil {
		item = &PathItem{}
	}
	slot := item.slot(method)
	if slot == nil {
		return fmt.Errorf("%s: unknown method", where)
	}
	if *slot != nil {
		return fmt.Errorf("%s: duplicate route (operationId %q and %q)", where, (*slot).ID, op.ID)
	}
	params, err := pathParams(names, op.Params)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	op.Params = params
	*slot = &op
	b.paths[tmpl] = item
	b.ids[op.ID] = where
	return nil
}

// templatePath turns a ServeMux pattern path into an OpenAPI path template
// and returns the names of its wildcards in order.
func templatePath(p string) (string, []string, error) {
	if !strings.HasPrefix(p, "/") {
		return "", nil, fmt.Errorf("path %q: must start with /", p)
	}
	segs := strings.Split(p, "/")
	var names []string
	for i, seg := range segs {
		if !strings.ContainsAny(seg, "{}") {
			continue
		}
		last := i == len(segs)-1
		if seg == "{$}" && last {
			segs[i] = ""
			continue
		}
		name, ok := strings.CutPrefix(seg, "{")
		name, ok2 := strings.CutSuffix(name, "}")
		if !ok || !ok2 {
			return "", nil, fmt.Errorf("path %q: wildcard %q must be a whole segment", p, seg)
		}
		name, multi := strings.CutSuffix(name, "...")
		if multi && !last {
			return "", nil, fmt.Errorf("path %q: %q must be the last segment", p, seg)
		}
		if !validName(name) || strings.Contains(name, ".") || slices.Contains(names, name) {
			return "", nil, fmt.Errorf("path %q: bad or repeated wildcard %q", p, seg)
		}
		names = append(names, name)
		segs[i] = "{" + name + "}"
	}
	return strings.Join(segs, "/"), names, nil
}

// pathParams returns declared with every path parameter required and the
// undeclared wildcards prepended as required strings.
func pathParams(names []string, declared []Param) ([]Param, error) {
	var auto, rest []Param
	for _, n := range names {
		if !slices.ContainsFunc(declared, func(p Param) bool { return p.In == "path" && p.Name == n }) {
			auto = append(auto, PathParam(n, ""))
		}
	}
	for _, p := range declared {
		if p.In == "path" {
			if !slices.Contains(names, p.Name) {
				return nil, fmt.Errorf("path parameter %q is not in the path", p.Name)
			}
			p.Required = true
		}
		rest = append(rest, p)
	}
	return append(auto, rest...), nil
}

// Component registers s under components/schemas/name and returns a schema
// referring to it. Registering the same name again with an equal schema is a
// no-op; with a different one, the first stays and [Validate] reports the
// clash, as it does for a name OpenAPI does not allow.
func (b *Builder) Component(name string, s *Schema) *Schema {
	switch prev, ok := b.schemas[name]; {
	case !validName(name):
		b.errs = append(b.errs, fmt.Errorf("component %q: name must match [a-zA-Z0-9._-]+", name))
	case s == nil:
		b.errs = append(b.errs, fmt.Errorf("component %q: nil schema", name))
	case ok && !reflect.DeepEqual(prev, s):
		b.errs = append(b.errs, fmt.Errorf("component %q: registered twice with different schemas", name))
	case !ok:
		b.schemas[name] = s
	}
	return Ref(name)
}

// SecurityScheme registers a components/securitySchemes entry.
func (b *Builder) SecurityScheme(name string, s SecurityScheme) {
	b.schemes[name] = &s
}

// Security sets the document-wide security requirements: any one of them
// suffices. Operations may override them with [Operation.Security].
func (b *Builder) Security(alternatives ...SecurityRequirement) {
	b.security = alternatives
}

// Doc returns the document built so far. Later calls on b do not change it;
// schemas are shared, not copied.
func (b *Builder) Doc() *Doc {
	d := &Doc{
		OpenAPI: Version,
		Info:    b.info,
		Paths:   make(map[string]*PathItem, len(b.paths)),
		Components: Components{
			Schemas:         maps.Clone(b.schemas),
			SecuritySchemes: maps.Clone(b.schemes),
		},
		Security: slices.Clone(b.security),
		errs:     slices.Clone(b.errs),
	}
	d.Info.AppVersions = maps.Clone(b.info.AppVersions)
	d.Info.Extensions = maps.Clone(b.info.Extensions)
	for p, item := range b.paths {
		c := *item
		d.Paths[p] = &c
	}
	if len(d.Components.SecuritySchemes) == 0 {
		d.Components.SecuritySchemes = nil
	}
	return d
}
