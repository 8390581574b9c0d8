package db_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/pulpo/pulpo/host/db"
)

func strp(s string) *string { return &s }

func TestRemoteCRUD(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	ctx := context.Background()
	conc, retries, rate := 4, 0, 10
	timeout := 2.5
	in := db.Remote{PulpType: "file.file", Name: "r1", URL: "https://example.com/PULP_MANIFEST",
		PulpLabels: map[string]string{"env": "dev"}, CACert: strp("ca"), ClientCert: strp("cert"), ClientKey: strp("key"),
		TLSValidation: true, ProxyURL: strp("http://proxy:3128"), ProxyUsername: strp("pu"), ProxyPassword: strp("pp"),
		Username: strp("u"), Password: strp("p"), Policy: "on_demand", DownloadConcurrency: &conc, MaxRetries: &retries,
		TotalTimeout: &timeout, Headers: []map[string]string{{"X-A": "1"}, {"X-B": "2"}}, RateLimit: &rate,
		Fields: json.RawMessage(`{"manifest_name": "m"}`)}
	got := must[db.Remote](t)(d.CreateRemote(ctx, in))
	if got.ID == uuid.Nil || got.CreatedAt.IsZero() {
		t.Fatalf("created %+v", got)
	}
	read := must[db.Remote](t)(d.GetRemote(ctx, got.ID))
	want := in
	want.ID, want.CreatedAt, want.UpdatedAt, want.Fields = read.ID, read.CreatedAt, read.UpdatedAt, read.Fields
	rv, wv := reflect.ValueOf(read), reflect.ValueOf(want)
	for i := range rv.NumField() {
		if !reflect.DeepEqual(rv.Field(i).Interface(), wv.Field(i).Interface()) {
			t.Errorf("read back %s = %v, want %v", rv.Type().Field(i).Name, rv.Field(i), wv.Field(i))
		}
	}
	var fields map[string]string
	if json.Unmarshal(read.Fields, &fields) != nil || fields["manifest_name"] != "m" {
		t.Fatalf("fields %s", read.Fields)
	}
	if typ := must[string](t)(d.RemoteType(ctx, got.ID)); typ != "file.file" {
		t.Fatalf("RemoteType %q", typ)
	}
	// Defaults: empty labels, headers and fields, policy immediate.
	minimal := must[db.Remote](t)(d.CreateRemote(ctx, db.Remote{PulpType: "file.file", Name: "r2", URL: "file:///srv/x"}))
	if minimal.Policy != "immediate" || minimal.Headers == nil || len(minimal.Headers) != 0 || minimal.PulpLabels == nil || string(minimal.Fields) != "{}" {
		t.Fatalf("defaults %+v headers %v fields %s", minimal, minimal.Headers, minimal.Fields)
	}
	_, err := d.CreateRemote(ctx, db.Remote{PulpType: "file.file", Name: "r1", URL: "http://x/"})
	wantErr(t, err, db.ErrConflict)

	// Update writes every mutable field; clearing secrets works.
	upd := read
	upd.Name, upd.Password, upd.Username, upd.Headers, upd.Policy = "r1-new", nil, nil, nil, "streamed"
	out := must[db.Remote](t)(d.UpdateRemote(ctx, upd))
	if out.Name != "r1-new" || out.Password != nil || out.Username != nil || out.Policy != "streamed" ||
		len(out.Headers) != 0 || !out.UpdatedAt.After(read.UpdatedAt) || *out.ClientKey != "key" {
		t.Fatalf("updated %+v", out)
	}
	upd.Name = "r2"
	_, err = d.UpdateRemote(ctx, upd)
	wantErr(t, err, db.ErrConflict)
	_, err = d.UpdateRemote(ctx, db.Remote{ID: db.NewID(), Name: "ghost", URL: "http://x/"})
	wantErr(t, err, db.ErrNotFound)

	// Lists filter and order on non-secret columns only.
	p := must[db.Page[db.Remote]](t)(d.ListRemotes(ctx, db.ListParams{Limit: 10, Ordering: []string{"name"}}))
	if p.Count != 2 || p.Items[0].Name != "r1-new" || p.Items[1].Name != "r2" {
		t.Fatalf("list %+v", p)
	}
	for _, f := range []db.Filter{{Field: "url", Value: "file:///srv/x"}, {Field: "pulp_label_select", Value: "!env"},
		{Field: "name", Op: "startswith", Value: "r2"}, {Field: "policy", Value: "immediate"}} {
		if p := must[db.Page[db.Remote]](t)(d.ListRemotes(ctx, db.ListParams{Limit: 10, Filters: []db.Filter{f}})); p.Count != 1 || p.Items[0].Name != "r2" {
			t.Errorf("filter %+v: %+v", f, p)
		}
	}
	for _, secret := range []string{"password", "username", "client_key", "proxy_password", "proxy_username"} {
		_, err := d.ListRemotes(ctx, db.ListParams{Limit: 10, Filters: []db.Filter{{Field: secret, Value: "p"}}})
		wantErr(t, err, db.ErrBadFilter)
		_, err = d.ListRemotes(ctx, db.ListParams{Limit: 10, Ordering: []string{secret}})
		wantErr(t, err, db.ErrBadFilter)
	}

	ok(t, d.DeleteRemote(ctx, minimal.ID))
	wantErr(t, d.DeleteRemote(ctx, minimal.ID), db.ErrNotFound)
	_, err = d.GetRemote(ctx, minimal.ID)
	wantErr(t, err, db.ErrNotFound)
}

func TestRemoteSecretsNotPrinted(t *testing.T) {
	t.Parallel()
	r := db.Remote{Name: "r", URL: "http://x/", ClientKey: strp("SECRET-KEY"), Username: strp("SECRET-USER"),
		Password: strp("SECRET-PASS"), ProxyUsername: strp("SECRET-PU"), ProxyPassword: strp("SECRET-PP")}
	var buf strings.Builder
	for _, h := range []slog.Handler{slog.NewTextHandler(&buf, nil), slog.NewJSONHandler(&buf, nil)} {
		slog.New(h).Info("x", "remote", r, "ptr", &r)
	}
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		buf.WriteString(fmt.Sprintf(format, r))
		buf.WriteString(fmt.Sprintf(format, &r))
		buf.WriteString(fmt.Sprintf(format, struct{ R db.Remote }{r}))
	}
	if strings.Contains(buf.String(), "SECRET") || !strings.Contains(buf.String(), "http://x/") {
		t.Fatalf("printed remote: %s", buf.String())
	}
}

func TestDeleteRemoteDetachesRepositoriesAndDropsRemoteArtifacts(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	ctx := context.Background()
	rm := must[db.Remote](t)(d.CreateRemote(ctx, db.Remote{PulpType: "file.file", Name: "r", URL: "http://x/"}))
	other := must[db.Remote](t)(d.CreateRemote(ctx, db.Remote{PulpType: "file.file", Name: "o", URL: "http://y/"}))
	repo := must[db.Repository](t)(d.CreateRepository(ctx, db.Repository{PulpType: "file.file", Name: "repo", RemoteID: &rm.ID}))
	c := mkContents(t, d, "file.file", "c", 1)[0]
	ok(t, d.AddContentArtifacts(ctx, []db.ContentArtifact{{ContentID: c, RelativePath: "a"}}))
	cas := must[[]db.ContentArtifact](t)(d.ContentArtifactsOf(ctx, []uuid.UUID{c}))
	for _, r := range []uuid.UUID{rm.ID, other.ID} {
		_, err := d.Pool().Exec(ctx, `INSERT INTO remote_artifacts (id, content_artifact_id, remote_id, url)
			VALUES ($1, $2, $3, 'http://x/a')`, db.NewID(), cas[0].ID, r)
		ok(t, err)
	}
	ok(t, d.DeleteRemote(ctx, rm.ID))
	if got := must[db.Repository](t)(d.GetRepository(ctx, repo.ID)); got.RemoteID != nil {
		t.Fatalf("repository still points at the deleted remote: %v", got.RemoteID)
	}
	var left []uuid.UUID
	rows, err := d.Pool().Query(ctx, "SELECT remote_id FROM remote_artifacts")
	ok(t, err)
	for rows.Next() {
		var id uuid.UUID
		ok(t, rows.Scan(&id))
		left = append(left, id)
	}
	ok(t, rows.Err())
	if len(left) != 1 || left[0] != other.ID {
		t.Fatalf("remote artifacts left: %v, want only the other remote's", left)
	}
	if len(must[[]db.ContentArtifact](t)(d.ContentArtifactsOf(ctx, []uuid.UUID{c}))) != 1 {
		t.Fatal("content artifact went with the remote")
	}
}
