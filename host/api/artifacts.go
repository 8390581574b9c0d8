package api

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/pulpo/pulpo/host/artifact"
	"github.com/pulpo/pulpo/host/db"
	"github.com/pulpo/pulpo/host/digest"
	"github.com/pulpo/pulpo/host/href"
	"github.com/pulpo/pulpo/host/openapi"
)

type artifactResponse struct {
	base
	File   string  `json:"file" readOnly:"true" doc:"The stored file's storage path."`
	Size   int64   `json:"size" doc:"The size of the file in bytes."`
	MD5    *string `json:"md5" doc:"The MD5 checksum of the file if available."`
	SHA1   *string `json:"sha1" doc:"The SHA-1 checksum of the file if available."`
	SHA224 *string `json:"sha224" doc:"The SHA-224 checksum of the file if available."`
	SHA256 string  `json:"sha256" doc:"The SHA-256 checksum of the file."`
	SHA384 *string `json:"sha384" doc:"The SHA-384 checksum of the file if available."`
	SHA512 *string `json:"sha512" doc:"The SHA-512 checksum of the file if available."`
}

// artifactUpload documents the multipart request of artifacts_create.
type artifactUpload struct {
	File   string `json:"file" format:"binary" doc:"The stored file."`
	Size   *int64 `json:"size,omitempty" doc:"The size of the file in bytes."`
	MD5    string `json:"md5,omitempty"`
	SHA1   string `json:"sha1,omitempty"`
	SHA224 string `json:"sha224,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
	SHA384 string `json:"sha384,omitempty"`
	SHA512 string `json:"sha512,omitempty"`
}

func renderArtifact(a db.Artifact) any {
	return artifactResponse{
		base: base{PulpHref: href.Flat(href.Artifacts, a.ID), PRN: prn("core.artifact", a.ID), PulpCreated: a.CreatedAt, PulpLastUpdated: a.UpdatedAt},
		File: a.File, Size: a.Size, MD5: a.MD5, SHA1: a.SHA1, SHA224: a.SHA224, SHA256: a.SHA256, SHA384: a.SHA384, SHA512: a.SHA512,
	}
}

var artifactFilters = append(commonFilters(),
	filter{Param: "sha256", Field: "sha256", Kind: kString, Doc: "Filter results where sha256 matches value"},
	filter{Param: "sha224", Field: "sha224", Kind: kString, Doc: "Filter results where sha224 matches value"},
	filter{Param: "sha384", Field: "sha384", Kind: kString, Doc: "Filter results where sha384 matches value"},
	filter{Param: "sha512", Field: "sha512", Kind: kString, Doc: "Filter results where sha512 matches value"},
	filter{Param: "sha1", Field: "sha1", Kind: kString, Doc: "Filter results where sha1 matches value"},
	filter{Param: "md5", Field: "md5", Kind: kString, Doc: "Filter results where md5 matches value"},
	filter{Param: "repository_version", Field: "repository_version", Kind: kVersion, Doc: "Repository Version referenced by HREF"},
	filter{Param: "orphaned_for", Field: "orphaned_for", Kind: kInt, Doc: "Minutes Artifacts have been orphaned for. -1 uses ORPHAN_PROTECTION_TIME."},
)

var artifactOrdering = []string{"pulp_created", "pulp_last_updated", "size", "sha256"}

func (s *Server) artifactRoutes() error {
	list := href.APIRoot + "artifacts/"
	one := list + "{pulp_id}/"
	schema := s.spec.SchemaOf("ArtifactResponse", artifactResponse{})
	errResp := s.spec.ErrorResponse("Bad request")
	return s.routes([]routeDef{
		{"GET", list, openapi.Operation{ID: "artifacts_list", Summary: "List artifacts", Tags: []string{"Artifacts"},
			Params:    listParams(artifactFilters, artifactOrdering),
			Responses: map[int]openapi.Response{200: {Description: "OK", Schema: openapi.PaginatedList(schema)}, 400: errResp}}, listOf(artifactFilters, artifactOrdering, "", s.DB.ListArtifacts, renderArtifact)},
		{"POST", list, openapi.Operation{ID: "artifacts_create", Summary: "Create an artifact", Tags: []string{"Artifacts"},
			Description: "Upload a file as an artifact. Given checksums and size are verified; nothing is stored when they do not match.",
			Body:        &openapi.Body{Required: true, Content: map[string]*openapi.Schema{"multipart/form-data": s.spec.RequestOf("ArtifactUpload", artifactUpload{})}},
			Responses:   map[int]openapi.Response{201: {Description: "Created", Schema: schema}, 400: errResp}}, s.createArtifact},
		{"GET", one, openapi.Operation{ID: "artifacts_read", Summary: "Inspect an artifact", Tags: []string{"Artifacts"},
			Params:    listParams(nil, nil)[3:5],
			Responses: map[int]openapi.Response{200: {Description: "OK", Schema: schema}, 404: s.spec.ErrorResponse("Not found")}}, s.readArtifact},
		{"DELETE", one, openapi.Operation{ID: "artifacts_delete", Summary: "Delete an artifact", Tags: []string{"Artifacts"},
			Description: "Delete an artifact that no content uses.",
			Responses:   map[int]openapi.Response{204: {Description: "No content"}, 409: s.spec.ErrorResponse("The artifact is in use")}}, s.deleteArtifact},
	})
}

func (s *Server) readArtifact(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	a, err := s.DB.GetArtifact(r.Context(), id)
	if err != nil {
		return err
	}
	return detailJSON(w, r, http.StatusOK, renderArtifact(a))
}

func (s *Server) deleteArtifact(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	a, err := s.DB.DeleteArtifact(r.Context(), id)
	if errors.Is(err, db.ErrInUse) {
		return detail(http.StatusConflict, "The artifact is used by content and cannot be deleted.")
	}
	if err != nil {
		return err
	}
	if err := s.Storage.Delete(r.Context(), a.File); err != nil {
		s.log.WarnContext(r.Context(), "delete artifact file", "file", a.File, "err", err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// multipartForm streams a multipart request: the "file" part goes to
// onFile, small fields are collected; unknown fields are refused.
func multipartForm(r *http.Request, allowed []string, onFile func(io.Reader) error) (map[string]string, bool, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		return nil, false, detail(http.StatusUnsupportedMediaType, "Expected a multipart/form-data request.")
	}
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, false, detail(http.StatusBadRequest, "Multipart form parse error - %v", err)
	}
	fields := map[string]string{}
	gotFile := false
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, gotFile, detail(http.StatusBadRequest, "Multipart form parse error - %v", err)
		}
		name := part.FormName()
		switch {
		case name == "file":
			if gotFile {
				return nil, gotFile, fieldError("file", "Only one file may be sent.")
			}
			gotFile = true
			if err := onFile(part); err != nil {
				return nil, gotFile, err
			}
		case contains(allowed, name):
			b, err := io.ReadAll(io.LimitReader(part, 4097))
			if err != nil || len(b) > 4096 {
				return nil, gotFile, fieldError(name, "Value is too long.")
			}
			fields[name] = strings.TrimSpace(string(b))
		default:
			return nil, gotFile, fieldError(name, "Unexpected field.")
		}
	}
	return fields, gotFile, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (s *Server) createArtifact(w http.ResponseWriter, r *http.Request) error {
	var sp *artifact.Spooled
	defer func() {
		if sp != nil {
			sp.Discard()
		}
	}()
	fields, gotFile, err := multipartForm(r, append([]string{"size"}, digest.Names...), func(part io.Reader) error {
		var err error
		sp, err = s.Artifacts.Spool(r.Context(), part)
		return err
	})
	if err != nil {
		return err
	}
	if !gotFile {
		return fieldError("file", "No file was submitted.")
	}
	size := int64(-1)
	fe := fieldErrors{}
	if v, ok := fields["size"]; ok {
		if size, err = strconv.ParseInt(v, 10, 64); err != nil || size < 0 {
			fe.add("size", "A valid integer is required.")
		}
	}
	want := map[string]string{}
	for _, n := range digest.Names {
		v, ok := fields[n]
		if !ok || v == "" {
			continue
		}
		v = strings.ToLower(v)
		if !digest.Valid(n, v) {
			fe.add(n, "Enter a valid %s hex digest.", n)
			continue
		}
		if _, computed := sp.Digests[n]; !computed {
			fe.add(n, "Checksum type %s is not allowed.", n)
			continue
		}
		want[n] = v
	}
	if err := fe.err(); err != nil {
		return err
	}
	var mm *artifact.MismatchError
	if err := sp.Check(size, want); errors.As(err, &mm) {
		if mm.Field == "size" {
			return fieldError("size", "The size did not match actual size of file (expected %s, got %s).", mm.Expected, mm.Actual)
		}
		return fieldError(mm.Field, "The %s checksum did not match (expected %s, got %s).", mm.Field, mm.Expected, mm.Actual)
	} else if err != nil {
		return detail(http.StatusBadRequest, "%v", err)
	}
	a, _, err := s.Artifacts.Commit(r.Context(), sp, true)
	sp = nil // Commit always consumes it
	if errors.Is(err, artifact.ErrExists) {
		return &Error{Status: http.StatusBadRequest, Body: map[string][]string{"non_field_errors": {
			"Artifact with sha256 checksum of '" + a.SHA256 + "' already exists."}}}
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, renderArtifact(a))
}
