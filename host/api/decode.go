package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
)

// maxJSONBody bounds JSON request bodies; uploads use multipart and stream.
const maxJSONBody = 4 << 20

// decodeJSON reads a JSON object into v, refusing unknown fields, wrong
// types and trailing data with errors that name the field.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return detail(http.StatusUnsupportedMediaType, "Unsupported media type %q in request.", ct)
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxJSONBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return detail(http.StatusRequestEntityTooLarge, "Request body exceeds %d bytes.", maxJSONBody)
		}
		return detail(http.StatusBadRequest, "Could not read request body: %v", err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	return unmarshalStrict(body, v)
}

func unmarshalStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if dec.More() {
		return detail(http.StatusBadRequest, "JSON parse error - extra data after the object.")
	}
	return nil
}

func jsonError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var fe *Error
	switch {
	case errors.As(err, &fe):
		return fe
	case errors.As(err, &syn):
		return detail(http.StatusBadRequest, "JSON parse error - %v (at byte %d).", syn, syn.Offset)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return detail(http.StatusBadRequest, "Invalid data. Expected a JSON object, but got %s.", typ.Value)
		}
		return fieldError(typ.Field, "Incorrect type. Expected %s, got %s.", jsonKind(typ.Type.Kind().String()), typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return fieldError(name, "Unexpected field.")
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return detail(http.StatusBadRequest, "JSON parse error - unexpected end of input.")
	}
	return detail(http.StatusBadRequest, "JSON parse error - %v.", err)
}

func jsonKind(k string) string {
	switch k {
	case "int", "int32", "int64", "uint", "uint64", "float64":
		return "number"
	case "slice":
		return "list"
	case "map", "struct":
		return "object"
	case "bool":
		return "boolean"
	}
	return k
}
