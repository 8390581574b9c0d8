package db_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/pulpo/pulpo/host/db"
	"github.com/pulpo/pulpo/host/db/dbtest"
)

// TestAuthPermissions checks what the permission queries return: global
// and per-object roles, held directly or through a group, the list scope,
// the grant of created resources to a task's owner and the clean-up of
// assignments with their object.
func TestAuthPermissions(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	ctx := context.Background()
	ok(t, d.SyncBuiltinRoles(ctx, []db.Role{
		{Name: "t.repo_viewer", Permissions: []string{"t.view_repo"}},
		{Name: "file.filerepository_owner", Permissions: []string{"file.view_filerepository", "file.change_filerepository"}},
		{Name: "core.task_owner", Permissions: []string{"core.view_task"}},
	}))
	// Syncing again rewrites, and locks.
	ok(t, d.SyncBuiltinRoles(ctx, []db.Role{{Name: "t.repo_viewer", Permissions: []string{"t.view_repo", "t.x_repo"}}}))
	if r := must[db.Role](t)(d.GetRoleByName(ctx, "t.repo_viewer")); !r.Locked || len(r.Permissions) != 2 {
		t.Fatalf("synced role %+v", r)
	}
	if err := d.DeleteRole(ctx, must[db.Role](t)(d.GetRoleByName(ctx, "t.repo_viewer")).ID); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("deleting a locked role: %v", err)
	}
	alice := must[db.User](t)(d.CreateUser(ctx, db.User{Username: "alice", IsActive: true}))
	bob := must[db.User](t)(d.CreateUser(ctx, db.User{Username: "bob", IsActive: true}))
	if _, err := d.CreateUser(ctx, db.User{Username: "alice"}); !errors.Is(err, db.ErrConflict) {
		t.Fatalf("duplicate username: %v", err)
	}
	repo := must[db.Repository](t)(d.CreateRepository(ctx, db.Repository{Name: "r", PulpType: "file.file"}))
	other := must[db.Repository](t)(d.CreateRepository(ctx, db.Repository{Name: "o", PulpType: "file.file"}))
	h := "/pulp/api/v3/repositories/file/file/" + repo.ID.String() + "/"
	must[db.Assignment](t)(d.Assign(ctx, db.Assignment{Role: "t.repo_viewer", UserID: &alice.ID, ObjectID: &repo.ID, ObjectHref: &h}))
	if _, err := d.Assign(ctx, db.Assignment{Role: "t.repo_viewer", UserID: &alice.ID, ObjectID: &repo.ID, ObjectHref: &h}); !errors.Is(err, db.ErrConflict) {
		t.Fatalf("duplicate assignment: %v", err)
	}
	if _, err := d.Assign(ctx, db.Assignment{Role: "no.such", UserID: &alice.ID}); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("unknown role: %v", err)
	}
	perms := must[[]string](t)(d.Permissions(ctx, alice.ID, &repo.ID))
	if !slices.Equal(perms, []string{"t.view_repo", "t.x_repo"}) {
		t.Fatalf("alice on repo: %v", perms)
	}
	if p := must[[]string](t)(d.Permissions(ctx, alice.ID, &other.ID)); len(p) != 0 {
		t.Fatalf("alice on other: %v", p)
	}
	// Through a group.
	g := must[db.Group](t)(d.CreateGroup(ctx, "g"))
	ok(t, d.AddGroupUser(ctx, g.ID, bob.ID))
	must[db.Assignment](t)(d.Assign(ctx, db.Assignment{Role: "t.repo_viewer", GroupID: &g.ID}))
	if p := must[[]string](t)(d.Permissions(ctx, bob.ID, &other.ID)); len(p) != 2 {
		t.Fatalf("bob through a global group role: %v", p)
	}
	// The list scope keeps the objects with a matching permission.
	scoped := must[db.Page[db.Repository]](t)(d.ListRepositories(ctx, db.ListParams{Limit: 10,
		Filters: []db.Filter{{Field: "pulp_id", Op: "visible", Value: db.Visible{User: alice.ID, Perm: `t.view\_repo`}}}}))
	if scoped.Count != 1 || scoped.Items[0].ID != repo.ID {
		t.Fatalf("scoped list: %+v", scoped)
	}
	if p := must[db.Page[db.Repository]](t)(d.ListRepositories(ctx, db.ListParams{Limit: 10,
		Filters: []db.Filter{{Field: "pulp_id", Op: "visible", Value: db.Visible{User: alice.ID, Perm: `t.change\_repo`}}}})); p.Count != 0 {
		t.Fatalf("scope with another permission: %+v", p)
	}
	// What a task creates becomes its owner's, whichever comes first.
	for _, ownerFirst := range []bool{true, false} {
		task := must[db.Task](t)(d.InsertTask(ctx, db.NewTask{Name: "t"}))
		th := "/pulp/api/v3/tasks/" + task.ID.String() + "/"
		created := must[db.Repository](t)(d.CreateRepository(ctx, db.Repository{Name: "c" + uuid.NewString(), PulpType: "file.file"}))
		ch := "/pulp/api/v3/repositories/file/file/" + created.ID.String() + "/"
		if ownerFirst {
			must[db.Assignment](t)(d.Assign(ctx, db.Assignment{Role: "core.task_owner", UserID: &bob.ID, ObjectID: &task.ID, ObjectHref: &th}))
		}
		ok(t, d.AddCreatedResource(ctx, task.ID, ch))
		ok(t, d.AddCreatedResource(ctx, task.ID, ch+"versions/1/"))
		if !ownerFirst {
			must[db.Assignment](t)(d.Assign(ctx, db.Assignment{Role: "core.task_owner", UserID: &bob.ID, ObjectID: &task.ID, ObjectHref: &th}))
		}
		if p := must[[]string](t)(d.Permissions(ctx, bob.ID, &created.ID)); !slices.Contains(p, "file.change_filerepository") {
			t.Fatalf("owner first %v: bob on what his task created: %v", ownerFirst, p)
		}
	}
	// Deleting an object deletes its assignments.
	ok(t, d.DeleteRepository(ctx, repo.ID))
	if p := must[db.Page[db.Assignment]](t)(d.ListAssignments(ctx, db.ListParams{Limit: 10,
		Filters: []db.Filter{{Field: "object_id", Value: repo.ID}}})); p.Count != 0 {
		t.Fatalf("assignments outlive their object: %+v", p.Items)
	}
	// Deleting a user deletes its memberships and assignments.
	ok(t, d.DeleteUser(ctx, bob.ID))
	if p := must[db.Page[db.User]](t)(d.ListUsers(ctx, db.ListParams{Limit: 10, Filters: []db.Filter{{Field: "group", Value: g.ID}}})); p.Count != 0 {
		t.Fatalf("members after delete: %+v", p)
	}
}

// TestTaskOwnerRace: a task's created resource and its owner assignment inserted by
// two transactions open at once still give the owner the created object, whichever
// commits first (each trigger used to miss the other's uncommitted row).
func TestTaskOwnerRace(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	d := db.New(pool, nil)
	ctx := context.Background()
	ok(t, d.SyncBuiltinRoles(ctx, []db.Role{
		{Name: "file.filerepository_owner", Permissions: []string{"file.change_filerepository"}},
		{Name: "core.task_owner", Permissions: []string{"core.view_task"}},
	}))
	bob := must[db.User](t)(d.CreateUser(ctx, db.User{Username: "bob", IsActive: true}))
	roleID := must[db.Role](t)(d.GetRoleByName(ctx, "core.task_owner")).ID
	for _, taskFirst := range []bool{true, false} {
		task := must[db.Task](t)(d.InsertTask(ctx, db.NewTask{Name: "t"}))
		th := "/pulp/api/v3/tasks/" + task.ID.String() + "/"
		created := must[db.Repository](t)(d.CreateRepository(ctx, db.Repository{Name: "c" + uuid.NewString(), PulpType: "file.file"}))
		ch := "/pulp/api/v3/repositories/file/file/" + created.ID.String() + "/"
		insertCreated := func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO created_resources (task_id, href) VALUES ($1, $2)`, task.ID, ch)
			return err
		}
		insertOwner := func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO role_assignments (id, role_id, user_id, object_id, object_href)
				VALUES (gen_random_uuid(), $1, $2, $3, $4)`, roleID, bob.ID, task.ID, th)
			return err
		}
		first, second := insertCreated, insertOwner
		if !taskFirst {
			first, second = insertOwner, insertCreated
		}
		tx1 := must[pgx.Tx](t)(pool.Begin(ctx))
		ok(t, first(tx1))
		done := make(chan error, 1)
		go func() {
			tx2, err := pool.Begin(ctx)
			if err == nil {
				if err = second(tx2); err == nil {
					err = tx2.Commit(ctx)
				} else {
					_ = tx2.Rollback(ctx)
				}
			}
			done <- err
		}()
		time.Sleep(200 * time.Millisecond) // let the second reach its trigger
		ok(t, tx1.Commit(ctx))
		ok(t, <-done)
		if p := must[[]string](t)(d.Permissions(ctx, bob.ID, &created.ID)); !slices.Contains(p, "file.change_filerepository") {
			t.Fatalf("task first %v: bob on what his task created: %v", taskFirst, p)
		}
	}
}

// TestAuthMigrationDown undoes and redoes migration 0007.
func TestAuthMigrationDown(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	ctx := context.Background()
	for _, f := range []string{"../../migrations/0007_auth.down.sql", "../../migrations/0007_auth.up.sql"} {
		sql, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.Pool().Exec(ctx, string(sql)); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
	must[db.User](t)(d.CreateUser(ctx, db.User{Username: "x"}))
}
