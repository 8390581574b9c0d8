package openapi

import (
	"reflect"
	"slices"
	"strings"
)

// field is one JSON property of a struct, found the way encoding/json finds it.
type field struct {
	name     string
	typ      reflect.Type
	tag      reflect.StructTag
	optional bool // omitempty or omitzero, or promoted through an embedded pointer
	quoted   bool // the ",string" option
	depth    int  // embedding depth; the shallowest field of a name wins
	tagged   bool // named by a json tag; wins a tie at equal depth
}

// fields lists the JSON properties of struct type t in encoding/json order.
func fields(t reflect.Type) []field {
	var all []field
	collect(t, 0, false, map[reflect.Type]bool{}, &all)
	best := map[string]int{}
	for i, f := range all {
		j, ok := best[f.name]
		if !ok || f.depth < all[j].depth || f.depth == all[j].depth && f.tagged && !all[j].tagged {
			best[f.name] = i
		}
	}
	out := make([]field, 0, len(best))
	for i, f := range all {
		if best[f.name] == i {
			out = append(out, f)
		}
	}
	return out
}

// collect appends the fields of t, flattening untagged embedded structs.
func collect(t reflect.Type, depth int, viaPtr bool, seen map[reflect.Type]bool, out *[]field) {
	if seen[t] {
		return // embedded in itself through a pointer
	}
	seen[t] = true
	defer delete(seen, t)
	for i := range t.NumField() {
		sf := t.Field(i)
		tag := sf.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if sf.Anonymous {
			ft, ptr := sf.Type, sf.Type.Kind() == reflect.Pointer
			if ptr {
				ft = ft.Elem()
			}
			if !sf.IsExported() && ft.Kind() != reflect.Struct {
				continue
			}
			if name == "" && ft.Kind() == reflect.Struct && !special(ft) {
				collect(ft, depth+1, viaPtr || ptr, seen, out)
				continue
			}
		} else if !sf.IsExported() {
			continue
		}
		o := strings.Split(opts, ",")
		f := field{
			name:     name,
			typ:      sf.Type,
			tag:      sf.Tag,
			optional: viaPtr || slices.Contains(o, "omitempty") || slices.Contains(o, "omitzero"),
			quoted:   slices.Contains(o, "string"),
			depth:    depth,
			tagged:   name != "",
		}
		if f.name == "" {
			f.name = sf.Name
		}
		*out = append(*out, f)
	}
}
