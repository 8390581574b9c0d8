package openapi

import (
	"encoding"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// mode selects which fields of a struct a schema shows.
type mode int

const (
	modeAll     mode = iota // every field, readOnly and writeOnly flagged
	modeRequest             // readOnly fields left out
)

type typeKey struct {
	t reflect.Type
	m mode
}

// Types compared against while reflecting; constants in all but syntax.
var (
	timeType          = reflect.TypeFor[time.Time]()
	rawMessageType    = reflect.TypeFor[json.RawMessage]()
	jsonMarshalerType = reflect.TypeFor[json.Marshaler]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
)

// SchemaOf returns the schema of v's type, with every nested type inlined.
// A struct type nested in itself is written as {"type": "object"} where it
// recurs; use [Builder.SchemaOf] to get a $ref instead. A pointer v describes the
// type it points to.
func SchemaOf(v any) *Schema {
	r := &reflector{mode: modeAll, stack: map[reflect.Type]bool{}}
	return r.top(reflect.TypeOf(v))
}

// SchemaOf registers the schema of v's type as components/schemas/name and
// returns a reference to it. Named struct types nested in it are registered
// under their Go type name (generic arguments appended, e.g. PageItem), so
// recursive types end in a $ref instead of looping.
func (b *Builder) SchemaOf(name string, v any) *Schema {
	return b.schemaOf(name, v, modeAll)
}

// RequestOf is [Builder.SchemaOf] for request bodies: readOnly fields are
// left out, because clients such as pulp-glue check "required" without
// regard to readOnly. Nested named types are registered as GoName+"Request".
func (b *Builder) RequestOf(name string, v any) *Schema {
	return b.schemaOf(name, v, modeRequest)
}

func (b *Builder) schemaOf(name string, v any, m mode) *Schema {
	r := &reflector{b: b, mode: m, stack: map[reflect.Type]bool{}}
	t := deref(reflect.TypeOf(v))
	if t != nil && t.Kind() == reflect.Struct && t.Name() != "" && !special(t) {
		if _, ok := b.types[typeKey{t, m}]; !ok {
			return r.named(t, name)
		}
	}
	return b.Component(name, r.top(t))
}

type reflector struct {
	b     *Builder // nil: inline every struct
	mode  mode
	stack map[reflect.Type]bool // structs being inlined, to cut recursion
}

// top describes t itself: a struct is written out, not referenced.
func (r *reflector) top(t reflect.Type) *Schema {
	t = deref(t)
	if t == nil {
		return &Schema{}
	}
	if t.Kind() == reflect.Struct && !special(t) {
		return r.inline(t)
	}
	return r.schema(t)
}

func (r *reflector) schema(t reflect.Type) *Schema {
	if t.Kind() == reflect.Pointer {
		return Nullable(r.schema(t.Elem()))
	}
	switch {
	case t == timeType:
		return &Schema{Type: "string", Format: "date-time"}
	case t == rawMessageType, t.Kind() == reflect.Interface, implements(t, jsonMarshalerType):
		return &Schema{}
	case implements(t, textMarshalerType):
		if t.Name() == "UUID" {
			return &Schema{Type: "string", Format: "uuid"}
		}
		return &Schema{Type: "string"}
	}
	switch t.Kind() {
	case reflect.Bool:
		return &Schema{Type: "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16:
		return &Schema{Type: "integer"}
	case reflect.Int32:
		return &Schema{Type: "integer", Format: "int32"}
	case reflect.Int64:
		return &Schema{Type: "integer", Format: "int64"}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		s := &Schema{Type: "integer", Minimum: new(0.0)}
		if t.Kind() == reflect.Uint64 {
			s.Format = "int64"
		}
		return s
	case reflect.Float32:
		return &Schema{Type: "number", Format: "float"}
	case reflect.Float64:
		return &Schema{Type: "number", Format: "double"}
	case reflect.String:
		return &Schema{Type: "string"}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 && !implements(t.Elem(), jsonMarshalerType) && !implements(t.Elem(), textMarshalerType) {
			return &Schema{Type: "string", Format: "byte"} // encoding/json writes base64
		}
		return &Schema{Type: "array", Items: r.schema(t.Elem())}
	case reflect.Array:
		return &Schema{Type: "array", Items: r.schema(t.Elem())}
	case reflect.Map:
		return &Schema{Type: "object", AdditionalProperties: r.schema(t.Elem())}
	case reflect.Struct:
		if r.b != nil && t.Name() != "" {
			return r.named(t, "")
		}
		return r.inline(t)
	}
	return &Schema{} // chan, func, complex: encoding/json cannot write them
}

// named registers t as a component (under name, or its Go name) and
// returns a reference. The component is reserved before its fields are
// walked, so a type nested in itself refers to itself.
func (r *reflector) named(t reflect.Type, name string) *Schema {
	key := typeKey{t, r.mode}
	if n, ok := r.b.types[key]; ok {
		return Ref(n)
	}
	if name == "" {
		name = goName(t)
		if r.mode == modeRequest {
			name += "Request"
		}
	}
	if _, taken := r.b.schemas[name]; taken || !validName(name) {
		// Let Component report the clash or the bad name.
		return r.b.Component(name, r.inline(t))
	}
	r.b.types[key] = name
	r.b.schemas[name] = &Schema{}
	r.b.schemas[name] = r.inline(t)
	return Ref(name)
}

// inline writes out the object schema of struct type t.
func (r *reflector) inline(t reflect.Type) *Schema {
	if r.stack[t] {
		return &Schema{Type: "object"}
	}
	r.stack[t] = true
	defer delete(r.stack, t)
	s := &Schema{Type: "object"}
	for _, f := range fields(t) {
		readOnly := f.tag.Get("readOnly") == "true"
		if readOnly && r.mode == modeRequest {
			continue
		}
		if s.Properties == nil {
			s.Properties = map[string]*Schema{}
		}
		s.Properties[f.name] = r.field(f, readOnly)
		if !f.optional {
			s.Required = append(s.Required, f.name)
		}
	}
	return s
}

// field returns the schema of one struct field, with its tags applied.
func (r *reflector) field(f field, readOnly bool) *Schema {
	s := r.schema(f.typ)
	if f.quoted {
		s = quoted(s)
	}
	// format, enum and pattern describe the values: the items of an array.
	v := s
	if v.Type == "array" && v.Items != nil && v.Items.Ref == "" {
		v = v.Items
	}
	if v.Ref == "" {
		if fm := f.tag.Get("format"); fm != "" {
			v.Format = fm
		}
		if p := f.tag.Get("pattern"); p != "" {
			v.Pattern = p
		}
		if e, ok := f.tag.Lookup("enum"); ok {
			v.Enum = enumValues(e, v.Type)
		}
	}
	doc, writeOnly := f.tag.Get("doc"), f.tag.Get("writeOnly") == "true"
	if doc == "" && !readOnly && !writeOnly {
		return s
	}
	s = decorable(s)
	s.Description, s.ReadOnly, s.WriteOnly = doc, readOnly, writeOnly
	return s
}

// quoted applies the json ",string" option, which writes scalars as strings.
func quoted(s *Schema) *Schema {
	switch s.Type {
	case "integer", "number", "boolean":
		return &Schema{Type: "string", Nullable: s.Nullable}
	}
	return s
}

func enumValues(tag, typ string) []any {
	var out []any
	for _, v := range strings.Split(tag, ",") {
		switch typ {
		case "integer":
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				out = append(out, n)
				continue
			}
		case "number":
			if n, err := strconv.ParseFloat(v, 64); err == nil {
				out = append(out, n)
				continue
			}
		}
		out = append(out, v)
	}
	return out
}

func deref(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

func implements(t, iface reflect.Type) bool {
	return t.Implements(iface) || reflect.PointerTo(t).Implements(iface)
}

// special reports struct types that are not written as objects.
func special(t reflect.Type) bool {
	return t == timeType || implements(t, jsonMarshalerType) || implements(t, textMarshalerType)
}

// goName is t's name made valid for components: "Page[example.org/x.Item]"
// becomes "PageItem".
func goName(t reflect.Type) string {
	base, args, _ := strings.Cut(t.Name(), "[")
	var sb strings.Builder
	sb.WriteString(base)
	for _, a := range strings.Split(strings.TrimSuffix(args, "]"), ",") {
		if i := strings.LastIndexAny(a, "./"); i >= 0 {
			a = a[i+1:]
		}
		for _, c := range a {
			if isAlnum(c) || c == '_' {
				sb.WriteRune(c)
			}
		}
	}
	return sb.String()
}
