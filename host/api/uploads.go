package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/pulpo/pulpo/host/coretask"
	"github.com/pulpo/pulpo/host/db"
	"github.com/pulpo/pulpo/host/digest"
	"github.com/pulpo/pulpo/host/href"
	"github.com/pulpo/pulpo/host/openapi"
	"github.com/pulpo/pulpo/host/storage"
	"github.com/pulpo/pulpo/host/tasks"
)

type uploadResponse struct {
	base
	Size      int64      `json:"size" doc:"The size of the upload in bytes."`
	Completed *time.Time `json:"completed" readOnly:"true" doc:"Timestamp when upload is committed."`
}

type uploadChunkResponse struct {
	Offset int64 `json:"offset"`
	Size   int64 `json:"size"`
}

type uploadDetailResponse struct {
	uploadResponse
	Chunks []uploadChunkResponse `json:"chunks" readOnly:"true"`
}

type uploadCreate struct {
	Size int64 `json:"size" doc:"The size of the upload in bytes."`
}

type uploadChunk struct {
	File   string `json:"file" format:"binary" doc:"A chunk of the uploaded file."`
	SHA256 string `json:"sha256,omitempty" doc:"The SHA-256 checksum of the chunk if available."`
}

type uploadCommit struct {
	SHA256 string `json:"sha256" doc:"The expected sha256 checksum for the file."`
}

func renderUpload(u db.Upload) uploadResponse {
	return uploadResponse{base: base{PulpHref: href.Flat(href.Uploads, u.ID), PRN: prn("core.upload", u.ID),
		PulpCreated: u.CreatedAt, PulpLastUpdated: u.UpdatedAt}, Size: u.Size}
}

var uploadFilters = append(commonFilters(), timeFilters("pulp_created", "pulp_created")...)

var uploadOrdering = []string{"pulp_created", "size"}

func selectionParams() []openapi.Param {
	return []openapi.Param{
		openapi.QueryParam("fields", "array", "A list of fields to include in the response."),
		openapi.QueryParam("exclude_fields", "array", "A list of fields to exclude from the response."),
	}
}

func (s *Server) uploadRoutes() error {
	list := href.APIRoot + "uploads/"
	one := list + "{pulp_id}/"
	schema := s.spec.SchemaOf("UploadResponse", uploadResponse{})
	detailSchema := s.spec.SchemaOf("UploadDetailResponse", uploadDetailResponse{})
	bad := s.spec.ErrorResponse("Bad request")
	notFound := s.spec.ErrorResponse("Not found")
	json := func(v *openapi.Schema) *openapi.Body {
		return &openapi.Body{Required: true, Content: map[string]*openapi.Schema{"application/json": v}}
	}
	tag := []string{"Uploads"}
	return s.routes([]routeDef{
		{"GET", list, openapi.Operation{ID: "uploads_list", Summary: "List uploads", Tags: tag, Params: listParams(uploadFilters, uploadOrdering),
			Responses: map[int]openapi.Response{200: {Description: "OK", Schema: openapi.PaginatedList(schema)}, 400: bad}}, listOf(uploadFilters, uploadOrdering, "", s.DB.ListUploads, func(u db.Upload) any { return renderUpload(u) })},
		{"POST", list, openapi.Operation{ID: "uploads_create", Summary: "Create an upload", Tags: tag,
			Body:      json(s.spec.RequestOf("UploadCreate", uploadCreate{})),
			Responses: map[int]openapi.Response{201: {Description: "Created", Schema: schema}, 400: bad}}, s.createUpload},
		{"GET", one, openapi.Operation{ID: "uploads_read", Summary: "Inspect an upload", Tags: tag, Params: selectionParams(),
			Responses: map[int]openapi.Response{200: {Description: "OK", Schema: detailSchema}, 404: notFound}}, s.readUpload},
		{"PUT", one, openapi.Operation{ID: "uploads_update", Summary: "Upload a file chunk", Tags: tag,
			Description: "Upload a chunk for an upload. The Content-Range header gives the chunk's byte range: 'bytes 0-99/*'.",
			Params:      []openapi.Param{{Name: "Content-Range", In: "header", Required: true, Schema: &openapi.Schema{Type: "string"}}},
			Body:        &openapi.Body{Required: true, Content: map[string]*openapi.Schema{"multipart/form-data": s.spec.RequestOf("UploadChunk", uploadChunk{})}},
			Responses:   map[int]openapi.Response{200: {Description: "OK", Schema: schema}, 400: bad, 404: notFound}}, s.putChunk},
		{"DELETE", one, openapi.Operation{ID: "uploads_delete", Summary: "Delete an upload", Tags: tag,
			Responses: map[int]openapi.Response{204: {Description: "No content"}, 404: notFound}}, s.deleteUpload},
		{"POST", one + "commit/", openapi.Operation{ID: "uploads_commit", Summary: "Finish an upload",
			Description: "Check that the chunks cover the upload and match the sha256, then queue a task creating an artifact.",
			Tags:        tag, Body: json(s.spec.RequestOf("UploadCommit", uploadCommit{})),
			Responses: map[int]openapi.Response{202: {Description: "Accepted", Schema: s.spec.AsyncOperation()}, 400: bad, 404: notFound}}, s.commitUpload},
	})
}

func (s *Server) createUpload(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Size *int64 `json:"size"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if req.Size == nil {
		return fieldError("size", "This field is required.")
	}
	if *req.Size < 0 {
		return fieldError("size", "Ensure this value is greater than or equal to 0.")
	}
	u, err := s.DB.CreateUpload(r.Context(), *req.Size)
	if err != nil {
		return err
	}
	if err := ownCreated(r, href.Flat(href.Uploads, u.ID)); err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, renderUpload(u))
}

func (s *Server) uploadDetail(ctx context.Context, u db.Upload) (uploadDetailResponse, error) {
	chunks, err := s.DB.UploadChunks(ctx, u.ID)
	out := uploadDetailResponse{uploadResponse: renderUpload(u), Chunks: []uploadChunkResponse{}}
	for _, c := range chunks {
		out.Chunks = append(out.Chunks, uploadChunkResponse{Offset: c.Offset, Size: c.Size})
	}
	return out, err
}

func (s *Server) readUpload(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	u, err := s.DB.GetUpload(r.Context(), id)
	if err != nil {
		return err
	}
	out, err := s.uploadDetail(r.Context(), u)
	if err != nil {
		return err
	}
	return detailJSON(w, r, http.StatusOK, out)
}

var contentRangeRE = regexp.MustCompile(`^bytes (\d{1,19})-(\d{1,19})/(\d{1,19}|\*)$`)

// parseContentRange reads "bytes start-end/total|*" for an upload of size.
func parseContentRange(h string, size int64) (start, end int64, err error) {
	m := contentRangeRE.FindStringSubmatch(strings.TrimSpace(h))
	if m == nil {
		return 0, 0, fieldError("Content-Range", "Expected a header of the form 'bytes start-end/total' or 'bytes start-end/*', got %q.", h)
	}
	start, e1 := strconv.ParseInt(m[1], 10, 64)
	end, e2 := strconv.ParseInt(m[2], 10, 64)
	if e1 != nil || e2 != nil || start > end {
		return 0, 0, fieldError("Content-Range", "Invalid byte range %q.", h)
	}
	if m[3] != "*" {
		if total, err := strconv.ParseInt(m[3], 10, 64); err != nil || total != size {
			return 0, 0, fieldError("Content-Range", "Total %s does not match the upload size %d.", m[3], size)
		}
	}
	if end >= size {
		return 0, 0, fieldError("Content-Range", "Chunk ends at byte %d, past the end of the %d byte upload.", end, size)
	}
	return start, end, nil
}

// runningHash restores the upload's sha256 state, or a fresh hash at offset 0.
func runningHash(u db.Upload) (hash.Hash, int64) {
	h := sha256.New()
	if len(u.HashState) > 0 {
		if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(u.HashState); err == nil {
			return h, u.HashedBytes
		}
		h.Reset()
	}
	return h, 0
}

func hashState(h hash.Hash) []byte {
	b, _ := h.(encoding.BinaryMarshaler).MarshalBinary()
	return b
}

func (s *Server) putChunk(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	id, err := pathID(r)
	if err != nil {
		return err
	}
	u, err := s.DB.GetUpload(ctx, id)
	if err != nil {
		return err
	}
	start, end, err := parseContentRange(r.Header.Get("Content-Range"), u.Size)
	if err != nil {
		return err
	}
	length := end - start + 1
	if length > s.MaxChunkSize {
		return fieldError("file", "Chunk of %d bytes exceeds the maximum chunk size of %d bytes.", length, s.MaxChunkSize)
	}
	running, hashed := runningHash(u)
	extends := hashed == start
	chunkID := db.NewID()
	key := "upload/" + u.ID.String() + "/" + chunkID.String()
	var info storage.Info
	stored := false
	fields, gotFile, err := multipartForm(r, []string{"sha256"}, func(part io.Reader) error {
		var src io.Reader = io.LimitReader(part, length+1)
		if extends {
			src = io.TeeReader(src, running)
		}
		var err error
		info, err = s.Storage.Put(ctx, key, src)
		stored = err == nil
		return err
	})
	cleanup := func() {
		if stored {
			if err := s.Storage.Delete(context.WithoutCancel(ctx), key); err != nil {
				s.log.WarnContext(ctx, "delete rejected chunk", "key", key, "err", err)
			}
		}
	}
	if err != nil {
		cleanup()
		return err
	}
	if !gotFile {
		return fieldError("file", "No file was submitted.")
	}
	if info.Size != length {
		cleanup()
		return fieldError("file", "Chunk is %s bytes but Content-Range announces %d.", sizeText(info.Size, length), length)
	}
	if want := strings.ToLower(fields["sha256"]); want != "" && want != info.SHA256 {
		cleanup()
		return fieldError("sha256", "Checksum does not match chunk upload (expected %s, got %s).", want, info.SHA256)
	}
	var state []byte
	if extends {
		state = hashState(running)
	}
	replaced, err := s.DB.PutChunk(ctx, db.UploadChunk{UploadID: u.ID, Offset: start, Size: length, File: key, SHA256: info.SHA256}, hashed, state)
	if errors.Is(err, db.ErrChunkOverlap) {
		cleanup()
		return fieldError("Content-Range", "Bytes %d-%d overlap a chunk already uploaded at another offset.", start, end)
	}
	if err != nil {
		cleanup()
		return err
	}
	if replaced != nil {
		if err := s.Storage.Delete(ctx, replaced.File); err != nil {
			s.log.WarnContext(ctx, "delete replaced chunk", "key", replaced.File, "err", err)
		}
	}
	u, err = s.DB.GetUpload(ctx, id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, renderUpload(u))
}

func sizeText(got, want int64) string {
	if got > want {
		return "more than " + strconv.FormatInt(want, 10)
	}
	return strconv.FormatInt(got, 10)
}

func (s *Server) deleteUpload(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	chunks, err := s.DB.DeleteUpload(r.Context(), id)
	if err != nil {
		return err
	}
	for _, c := range chunks {
		if err := s.Storage.Delete(r.Context(), c.File); err != nil {
			s.log.WarnContext(r.Context(), "delete chunk", "key", c.File, "err", err)
		}
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) commitUpload(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	id, err := pathID(r)
	if err != nil {
		return err
	}
	var req struct {
		SHA256 *string `json:"sha256"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if req.SHA256 == nil {
		return fieldError("sha256", "This field is required.")
	}
	want := strings.ToLower(*req.SHA256)
	if !digest.Valid("sha256", want) {
		return fieldError("sha256", "Enter a valid sha256 hex digest.")
	}
	got, err := s.uploadDigest(ctx, id)
	if err != nil {
		return err
	}
	if got != want {
		return fieldError("sha256", "The sha256 of the uploaded file is %s, not %s.", got, want)
	}
	return s.dispatch(w, r, tasks.Spec{Name: coretask.CommitUpload, Args: coretask.CommitUploadArgs{Upload: id, SHA256: want},
		Exclusive: []string{href.Flat(href.Uploads, id)}})
}

// finishHash completes the running sha256 by reading the chunks past the
// hashed prefix, and saves the state so a repeated commit is instant.
func (s *Server) finishHash(ctx context.Context, u db.Upload, chunks []db.UploadChunk) (string, error) {
	h, hashed := runningHash(u)
	for _, c := range chunks {
		if c.Offset < hashed {
			continue
		}
		if c.Offset != hashed {
			return "", fmt.Errorf("upload %s: hash state at %d does not meet chunk at %d", u.ID, hashed, c.Offset)
		}
		rd, err := s.Storage.Open(ctx, c.File)
		if err != nil {
			return "", fmt.Errorf("read chunk at %d: %w", c.Offset, err)
		}
		_, err = io.Copy(h, rd)
		rd.Close()
		if err != nil {
			return "", fmt.Errorf("read chunk at %d: %w", c.Offset, err)
		}
		hashed += c.Size
	}
	if !bytes.Equal(hashState(h), u.HashState) {
		if err := s.DB.SaveUploadHash(ctx, u.ID, hashState(h), hashed); err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// uploadDigest checks that an upload's chunks cover it and returns its sha256.
func (s *Server) uploadDigest(ctx context.Context, id uuid.UUID) (string, error) {
	u, err := s.DB.GetUpload(ctx, id)
	if err != nil {
		return "", err
	}
	chunks, err := s.DB.UploadChunks(ctx, id)
	if err != nil {
		return "", err
	}
	var next int64
	for _, c := range chunks {
		if c.Offset != next {
			return "", detail(http.StatusBadRequest, "The upload is incomplete: bytes %d-%d are missing.", next, c.Offset-1)
		}
		next = c.Offset + c.Size
	}
	if next != u.Size {
		return "", detail(http.StatusBadRequest, "The upload is incomplete: bytes %d-%d are missing.", next, u.Size-1)
	}
	return s.finishHash(ctx, u, chunks)
}
