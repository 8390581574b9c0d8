package sdk

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	"github.com/pulpo/pulpo/abi"
)

// fieldsOf derives the field schema of a content struct from its exported fields:
//
//   - the name is the json tag's name (fields tagged json:"-" are skipped, embedded structs
//     are not flattened: give them a name);
//   - the type follows the Go kind: string, integers, bool, slices/arrays (items from the
//     element), maps and structs (object); pointers take their element's type;
//   - `pulpo:"required"` marks a required field, `desc:"..."` gives its description.
func fieldsOf(t reflect.Type) ([]abi.Field, error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("content type %s: want a struct", t)
	}
	var out []abi.Field
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		ft, items := jsonType(sf.Type)
		if ft == "" {
			return nil, fmt.Errorf("content type %s: field %s: type %s has no JSON schema type", t, sf.Name, sf.Type)
		}
		f := abi.Field{Name: name, Type: ft, Items: items, Description: sf.Tag.Get("desc")}
		for _, opt := range strings.Split(sf.Tag.Get("pulpo"), ",") {
			if opt == "required" {
				f.Required = true
			}
		}
		out = append(out, f)
	}
	return out, nil
}

func jsonType(t reflect.Type) (typ, items string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == reflect.TypeFor[json.RawMessage]() {
		return abi.TypeObject, ""
	}
	switch t.Kind() {
	case reflect.String:
		return abi.TypeString, ""
	case reflect.Bool:
		return abi.TypeBoolean, ""
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return abi.TypeInteger, ""
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return abi.TypeString, "" // []byte marshals as base64
		}
		el, _ := jsonType(t.Elem())
		if el == "" {
			return "", ""
		}
		if el == abi.TypeString {
			el = "" // the default
		}
		return abi.TypeArray, el
	case reflect.Map, reflect.Struct, reflect.Interface:
		return abi.TypeObject, ""
	}
	return "", ""
}
