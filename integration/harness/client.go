package harness

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"mime/multipart"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// APIRoot is the path of the REST API; Client.URL resolves relative paths
// against it.
const APIRoot = "/pulp/api/v3/"

// TaskTimeout is how long WaitTask waits for a task to finish.
const TaskTimeout = 60 * time.Second

// Client sends requests to a pulpo server.
//
// Paths are resolved by URL: "status/" is under the API root, "/pulp/content/x"
// is on the server, "http://..." is used as is, so hrefs from responses can
// be passed back directly.
//
// Bodies are encoded by type: nil sends none; Form sends multipart/form-data;
// []byte, string and json.RawMessage are sent as JSON text; an io.Reader is
// sent as is, without a Content-Type; anything else is marshalled to JSON.
type Client struct {
	// Base is the server's origin, such as http://127.0.0.1:24817.
	Base string
	// HTTP sends the requests; its timeout bounds each one.
	HTTP *http.Client
	// Header is added to every request, e.g. Authorization.
	Header http.Header

	t testing.TB // fails on transport errors in Do, GET, POST...
}

// NewClient returns a client of the server at base, failing t on transport
// errors. It sends the harness's admin credentials (see As, Anonymous).
func NewClient(t testing.TB, base string) *Client {
	c := &Client{
		Base:   strings.TrimSuffix(base, "/"),
		HTTP:   &http.Client{Timeout: 60 * time.Second},
		Header: http.Header{},
		t:      t,
	}
	return c.As(AdminUsername, AdminPassword)
}

// URL resolves path: relative to the API root, absolute on the server, or
// a full URL.
func (c *Client) URL(path string) string {
	switch {
	case strings.HasPrefix(path, "http://"), strings.HasPrefix(path, "https://"):
		return path
	case strings.HasPrefix(path, "/"):
		return c.Base + path
	default:
		return c.Base + APIRoot + path
	}
}

// Form is a multipart/form-data body: plain fields and files.
type Form struct {
	Fields map[string]string
	Files  map[string]File // by field name
}

// File is one file of a Form.
type File struct {
	Name string // the file name sent; "file" if empty
	Data []byte
}

// encode returns the body and its Content-Type ("" for none).
func encode(body any) (io.Reader, string, error) {
	switch b := body.(type) {
	case nil:
		return nil, "", nil
	case Form:
		return encodeForm(b)
	case *Form:
		return encodeForm(*b)
	case json.RawMessage:
		return bytes.NewReader(b), "application/json", nil
	case []byte:
		return bytes.NewReader(b), "application/json", nil
	case string:
		return strings.NewReader(b), "application/json", nil
	case io.Reader:
		return b, "", nil
	}
	data, err := json.Marshal(body)
	if err != nil {
		return nil, "", fmt.Errorf("encode body: %w", err)
	}
	return bytes.NewReader(data), "application/json", nil
}

func encodeForm(f Form) (io.Reader, string, error) {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for _, k := range slices.Sorted(maps.Keys(f.Fields)) {
		if err := w.WriteField(k, f.Fields[k]); err != nil {
			return nil, "", err
		}
	}
	for _, k := range slices.Sorted(maps.Keys(f.Files)) {
		name := f.Files[k].Name
		if name == "" {
			name = "file"
		}
		part, err := w.CreateFormFile(k, name)
		if err != nil {
			return nil, "", err
		}
		if _, err := part.Write(f.Files[k].Data); err != nil {
			return nil, "", err
		}
	}
	if err := w.Close(); err != nil {
		return nil, "", err
	}
	return &buf, w.FormDataContentType(), nil
}

// Request sends a request and reads the whole response. It returns an error
// instead of failing the test, so it may be called from any goroutine. The
// returned response's Body can be read again.
func (c *Client) Request(method, path string, body any, header http.Header) (*http.Response, []byte, error) {
	r, contentType, err := encode(body)
	if err != nil {
		return nil, nil, err
	}
	req, err := http.NewRequest(method, c.URL(path), r)
	if err != nil {
		return nil, nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range c.Header {
		req.Header[k] = slices.Clone(v)
	}
	for k, v := range header {
		req.Header[k] = slices.Clone(v)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp, nil, fmt.Errorf("%s %s: read body: %w", method, path, err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(data))
	return resp, data, nil
}

// Do is Request failing the client's test on a transport error. Call it from
// the test's goroutine.
func (c *Client) Do(method, path string, body any, header http.Header) (*http.Response, []byte) {
	c.t.Helper()
	resp, data, err := c.Request(method, path, body, header)
	if err != nil {
		c.t.Fatalf("harness: %s %s: %v", method, path, err)
	}
	return resp, data
}

// GET sends a GET request; body is usually nil. See Do.
func (c *Client) GET(path string, body any) (*http.Response, []byte) {
	c.t.Helper()
	return c.Do(http.MethodGet, path, body, nil)
}

// POST sends a POST request. See Do.
func (c *Client) POST(path string, body any) (*http.Response, []byte) {
	c.t.Helper()
	return c.Do(http.MethodPost, path, body, nil)
}

// PUT sends a PUT request. See Do.
func (c *Client) PUT(path string, body any) (*http.Response, []byte) {
	c.t.Helper()
	return c.Do(http.MethodPut, path, body, nil)
}

// PATCH sends a PATCH request. See Do.
func (c *Client) PATCH(path string, body any) (*http.Response, []byte) {
	c.t.Helper()
	return c.Do(http.MethodPatch, path, body, nil)
}

// DELETE sends a DELETE request; body is usually nil. See Do.
func (c *Client) DELETE(path string, body any) (*http.Response, []byte) {
	c.t.Helper()
	return c.Do(http.MethodDelete, path, body, nil)
}

// Multipart sends form as multipart/form-data, e.g. an upload:
//
//	srv.Multipart("POST", "content/file/files/", harness.Form{
//		Fields: map[string]string{"relative_path": "a.txt"},
//		Files:  map[string]harness.File{"file": {Data: data}},
//	})
//
// For headers such as Content-Range, pass a Form to Do; JSON accepts a Form
// as its body too.
func (c *Client) Multipart(method, path string, form Form) (*http.Response, []byte) {
	c.t.Helper()
	return c.Do(method, path, form, nil)
}

// JSON sends a request, fails t unless the status is want, and returns the
// decoded JSON object of the response (nil for an empty body).
func (c *Client) JSON(t testing.TB, method, path string, body any, want int) map[string]any {
	t.Helper()
	var out map[string]any
	c.Decode(t, method, path, body, want, &out)
	return out
}

// Decode is JSON into out, for responses that are not objects or for typed
// results; an empty body leaves out untouched.
func (c *Client) Decode(t testing.TB, method, path string, body any, want int, out any) {
	t.Helper()
	resp, data, err := c.Request(method, path, body, nil)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	if resp.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d; body:\n%s", method, path, resp.StatusCode, want, truncate(data))
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return
	}
	if err := json.Unmarshal(data, out); err != nil {
		t.Fatalf("%s %s: decode %T: %v; body:\n%s", method, path, out, err, truncate(data))
	}
}

// taskDone are the final task states.
var taskDone = []string{"completed", "failed", "canceled"}

// WaitTask polls the task at href until its state is completed, failed or
// canceled, and returns it; it fails t after TaskTimeout.
func (c *Client) WaitTask(t testing.TB, href string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(TaskTimeout)
	pause := 20 * time.Millisecond
	for {
		task := c.JSON(t, http.MethodGet, href, nil, http.StatusOK)
		if state, _ := task["state"].(string); slices.Contains(taskDone, state) {
			return task
		}
		if time.Now().After(deadline) {
			t.Fatalf("task %s not finished after %v: %s", href, TaskTimeout, mustJSON(task))
		}
		time.Sleep(pause)
		pause = min(2*pause, 500*time.Millisecond)
	}
}

// RunTask sends a request that dispatches a task (202 with {"task": href}),
// waits for it, fails t unless it completed, and returns the task.
func (c *Client) RunTask(t testing.TB, method, path string, body any) map[string]any {
	t.Helper()
	resp := c.JSON(t, method, path, body, http.StatusAccepted)
	href, _ := resp["task"].(string)
	if href == "" {
		t.Fatalf("%s %s: no task href in %s", method, path, mustJSON(resp))
	}
	task := c.WaitTask(t, href)
	if task["state"] != "completed" {
		t.Fatalf("%s %s: task %s: %s", method, path, task["state"], mustJSON(task))
	}
	return task
}

func mustJSON(v any) string {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(data)
}

func truncate(data []byte) string {
	const limit = 4 << 10
	if len(data) > limit {
		return string(data[:limit]) + fmt.Sprintf("\n[... %d more bytes]", len(data)-limit)
	}
	return string(data)
}
