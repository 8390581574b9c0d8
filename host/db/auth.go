package db

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// User is a row of users. PasswordHash is a secret: String, GoString and
// LogValue leave it out.
type User struct {
	ID           uuid.UUID
	CreatedAt    time.Time
	UpdatedAt    time.Time
	Username     string
	PasswordHash string
	FirstName    string
	LastName     string
	Email        string
	IsStaff      bool
	IsActive     bool
	IsSuperuser  bool
	LastLogin    *time.Time
}

func (u User) String() string   { return fmt.Sprintf("user %s (%q)", u.ID, u.Username) }
func (u User) GoString() string { return u.String() }

// LogValue keeps slog from printing the password hash.
func (u User) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", u.ID.String()), slog.String("username", u.Username))
}

const userColumns = `u.id, u.created_at, u.updated_at, u.username, u.password_hash, u.first_name, u.last_name,
	u.email, u.is_staff, u.is_active, u.is_superuser, u.last_login`

func scanUser(row pgx.Row) (User, error) {
	var u User
	err := row.Scan(&u.ID, &u.CreatedAt, &u.UpdatedAt, &u.Username, &u.PasswordHash, &u.FirstName, &u.LastName,
		&u.Email, &u.IsStaff, &u.IsActive, &u.IsSuperuser, &u.LastLogin)
	return u, translate(err)
}

// CreateUser inserts u with a new id; a taken username is ErrConflict.
func (d *DB) CreateUser(ctx context.Context, u User) (User, error) {
	return scanUser(d.pool.QueryRow(ctx, `INSERT INTO users AS u (id, username, password_hash, first_name, last_name,
		email, is_staff, is_active, is_superuser) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING `+userColumns,
		NewID(), u.Username, u.PasswordHash, u.FirstName, u.LastName, u.Email, u.IsStaff, u.IsActive, u.IsSuperuser))
}

// GetUser loads one user by id.
func (d *DB) GetUser(ctx context.Context, id uuid.UUID) (User, error) {
	return scanUser(d.pool.QueryRow(ctx, "SELECT "+userColumns+" FROM users u WHERE u.id = $1", id))
}

// GetUserByName loads one user by username.
func (d *DB) GetUserByName(ctx context.Context, name string) (User, error) {
	return scanUser(d.pool.QueryRow(ctx, "SELECT "+userColumns+" FROM users u WHERE u.username = $1", name))
}

// UpdateUser stores every column of u but its id and timestamps.
func (d *DB) UpdateUser(ctx context.Context, u User) (User, error) {
	return scanUser(d.pool.QueryRow(ctx, `UPDATE users AS u SET username = $2, password_hash = $3, first_name = $4,
		last_name = $5, email = $6, is_staff = $7, is_active = $8, is_superuser = $9, updated_at = now()
		WHERE u.id = $1 RETURNING `+userColumns,
		u.ID, u.Username, u.PasswordHash, u.FirstName, u.LastName, u.Email, u.IsStaff, u.IsActive, u.IsSuperuser))
}

// DeleteUser removes a user with its memberships and role assignments.
func (d *DB) DeleteUser(ctx context.Context, id uuid.UUID) error {
	return authExecOne(ctx, d.pool, "DELETE FROM users WHERE id = $1", id)
}

// CountUsers counts every user.
func (d *DB) CountUsers(ctx context.Context) (int64, error) {
	var n int64
	err := d.pool.QueryRow(ctx, "SELECT count(*) FROM users").Scan(&n)
	return n, translate(err)
}

var userList = listSpec{
	from: "users u",
	columns: map[string]string{
		"pulp_id": "u.id", "id": "u.id", "username": "u.username", "first_name": "u.first_name",
		"last_name": "u.last_name", "email": "u.email", "is_staff": "u.is_staff", "is_active": "u.is_active",
		"is_superuser": "u.is_superuser", "date_joined": "u.created_at",
	},
	special: map[string]func(Filter, func(any) string) (string, error){
		"group": func(f Filter, arg func(any) string) (string, error) {
			return "u.id IN (SELECT user_id FROM group_users WHERE group_id = " + arg(f.Value) + ")", nil
		},
	},
	idExpr: "u.id",
}

// ListUsers lists users; the "group" filter takes a group id.
func (d *DB) ListUsers(ctx context.Context, p ListParams) (Page[User], error) {
	return listRows(ctx, d.pool, userList, userColumns, p, scanUser)
}

// Group is a row of groups.
type Group struct {
	ID        uuid.UUID
	CreatedAt time.Time
	UpdatedAt time.Time
	Name      string
}

const groupColumns = "g.id, g.created_at, g.updated_at, g.name"

func scanGroup(row pgx.Row) (Group, error) {
	var g Group
	err := row.Scan(&g.ID, &g.CreatedAt, &g.UpdatedAt, &g.Name)
	return g, translate(err)
}

// CreateGroup inserts a group; a taken name is ErrConflict.
func (d *DB) CreateGroup(ctx context.Context, name string) (Group, error) {
	return scanGroup(d.pool.QueryRow(ctx, "INSERT INTO groups AS g (id, name) VALUES ($1, $2) RETURNING "+groupColumns,
		NewID(), name))
}

// GetGroup loads one group.
func (d *DB) GetGroup(ctx context.Context, id uuid.UUID) (Group, error) {
	return scanGroup(d.pool.QueryRow(ctx, "SELECT "+groupColumns+" FROM groups g WHERE g.id = $1", id))
}

// RenameGroup changes a group's name.
func (d *DB) RenameGroup(ctx context.Context, id uuid.UUID, name string) (Group, error) {
	return scanGroup(d.pool.QueryRow(ctx, "UPDATE groups AS g SET name = $2, updated_at = now() WHERE g.id = $1 RETURNING "+groupColumns,
		id, name))
}

// DeleteGroup removes a group with its memberships and role assignments.
func (d *DB) DeleteGroup(ctx context.Context, id uuid.UUID) error {
	return authExecOne(ctx, d.pool, "DELETE FROM groups WHERE id = $1", id)
}

var groupList = listSpec{
	from:    "groups g",
	columns: map[string]string{"pulp_id": "g.id", "id": "g.id", "name": "g.name"},
	idExpr:  "g.id",
}

// ListGroups lists groups.
func (d *DB) ListGroups(ctx context.Context, p ListParams) (Page[Group], error) {
	return listRows(ctx, d.pool, groupList, groupColumns, p, scanGroup)
}

// AddGroupUser makes user a member of group; being one already is no error.
func (d *DB) AddGroupUser(ctx context.Context, group, user uuid.UUID) error {
	_, err := d.pool.Exec(ctx, "INSERT INTO group_users (group_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING", group, user)
	return translate(err)
}

// RemoveGroupUser ends a membership; ErrNotFound when there was none.
func (d *DB) RemoveGroupUser(ctx context.Context, group, user uuid.UUID) error {
	return authExecOne(ctx, d.pool, "DELETE FROM group_users WHERE group_id = $1 AND user_id = $2", group, user)
}

// Role is a row of roles: a named set of permissions. Locked roles are the
// built-in ones, rewritten by the host at startup.
type Role struct {
	ID          uuid.UUID
	CreatedAt   time.Time
	UpdatedAt   time.Time
	Name        string
	Description string
	Permissions []string
	Locked      bool
}

const roleColumns = "ro.id, ro.created_at, ro.updated_at, ro.name, ro.description, ro.permissions, ro.locked"

func scanRole(row pgx.Row) (Role, error) {
	var r Role
	err := row.Scan(&r.ID, &r.CreatedAt, &r.UpdatedAt, &r.Name, &r.Description, &r.Permissions, &r.Locked)
	return r, translate(err)
}

// CreateRole inserts an unlocked role; a taken name is ErrConflict.
func (d *DB) CreateRole(ctx context.Context, r Role) (Role, error) {
	if r.Permissions == nil {
		r.Permissions = []string{}
	}
	return scanRole(d.pool.QueryRow(ctx, `INSERT INTO roles AS ro (id, name, description, permissions)
		VALUES ($1, $2, $3, $4) RETURNING `+roleColumns, NewID(), r.Name, r.Description, r.Permissions))
}

// GetRole loads one role.
func (d *DB) GetRole(ctx context.Context, id uuid.UUID) (Role, error) {
	return scanRole(d.pool.QueryRow(ctx, "SELECT "+roleColumns+" FROM roles ro WHERE ro.id = $1", id))
}

// GetRoleByName loads one role by name.
func (d *DB) GetRoleByName(ctx context.Context, name string) (Role, error) {
	return scanRole(d.pool.QueryRow(ctx, "SELECT "+roleColumns+" FROM roles ro WHERE ro.name = $1", name))
}

// UpdateRole stores name, description and permissions of an unlocked role;
// a locked role is ErrNotFound here, the caller checks first.
func (d *DB) UpdateRole(ctx context.Context, r Role) (Role, error) {
	if r.Permissions == nil {
		r.Permissions = []string{}
	}
	return scanRole(d.pool.QueryRow(ctx, `UPDATE roles AS ro SET name = $2, description = $3, permissions = $4,
		updated_at = now() WHERE ro.id = $1 AND NOT ro.locked RETURNING `+roleColumns, r.ID, r.Name, r.Description, r.Permissions))
}

// DeleteRole removes an unlocked role and its assignments.
func (d *DB) DeleteRole(ctx context.Context, id uuid.UUID) error {
	return authExecOne(ctx, d.pool, "DELETE FROM roles WHERE id = $1 AND NOT locked", id)
}

var roleList = listSpec{
	from: "roles ro",
	columns: map[string]string{"pulp_id": "ro.id", "name": "ro.name", "description": "ro.description",
		"locked": "ro.locked", "pulp_created": "ro.created_at", "pulp_last_updated": "ro.updated_at",
		"permissions": "ro.permissions"},
	idExpr: "ro.id",
}

// ListRoles lists roles; "permissions" with the has lookup finds roles
// holding a permission.
func (d *DB) ListRoles(ctx context.Context, p ListParams) (Page[Role], error) {
	return listRows(ctx, d.pool, roleList, roleColumns, p, scanRole)
}

// SyncBuiltinRoles inserts or rewrites the given roles as locked ones, in
// one transaction, so every process converges on the same definitions.
func (d *DB) SyncBuiltinRoles(ctx context.Context, roles []Role) error {
	return d.inTx(ctx, func(tx pgx.Tx) error {
		// Serialise processes starting together.
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(70727)"); err != nil {
			return translate(err)
		}
		for _, r := range roles {
			if r.Permissions == nil {
				r.Permissions = []string{}
			}
			if _, err := tx.Exec(ctx, `INSERT INTO roles (id, name, description, permissions, locked)
				VALUES ($1, $2, $3, $4, true)
				ON CONFLICT (name) DO UPDATE SET description = EXCLUDED.description,
					permissions = EXCLUDED.permissions, locked = true, updated_at = now()
				WHERE roles.permissions IS DISTINCT FROM EXCLUDED.permissions
					OR roles.description IS DISTINCT FROM EXCLUDED.description OR NOT roles.locked`,
				NewID(), r.Name, r.Description, r.Permissions); err != nil {
				return translate(err)
			}
		}
		return nil
	})
}

// Assignment gives Role to one user or one group, globally (ObjectID nil)
// or on one object.
type Assignment struct {
	ID         uuid.UUID
	CreatedAt  time.Time
	Role       string
	UserID     *uuid.UUID
	GroupID    *uuid.UUID
	ObjectID   *uuid.UUID
	ObjectHref *string
}

const assignmentColumns = "ra.id, ra.created_at, ro.name, ra.user_id, ra.group_id, ra.object_id, ra.object_href"

func scanAssignment(row pgx.Row) (Assignment, error) {
	var a Assignment
	err := row.Scan(&a.ID, &a.CreatedAt, &a.Role, &a.UserID, &a.GroupID, &a.ObjectID, &a.ObjectHref)
	return a, translate(err)
}

// Assign stores an assignment of the role named a.Role; an unknown role is
// ErrNotFound, an existing identical assignment ErrConflict.
func (d *DB) Assign(ctx context.Context, a Assignment) (Assignment, error) {
	return scanAssignment(d.pool.QueryRow(ctx, `WITH ins AS (
		INSERT INTO role_assignments (id, role_id, user_id, group_id, object_id, object_href)
		SELECT $1, ro.id, $3, $4, $5, $6 FROM roles ro WHERE ro.name = $2
		RETURNING *)
		SELECT `+assignmentColumns+` FROM ins ra JOIN roles ro ON ro.id = ra.role_id`,
		NewID(), a.Role, a.UserID, a.GroupID, a.ObjectID, a.ObjectHref))
}

// GetAssignment loads one assignment.
func (d *DB) GetAssignment(ctx context.Context, id uuid.UUID) (Assignment, error) {
	return scanAssignment(d.pool.QueryRow(ctx, "SELECT "+assignmentColumns+
		" FROM role_assignments ra JOIN roles ro ON ro.id = ra.role_id WHERE ra.id = $1", id))
}

// DeleteAssignment removes one assignment.
func (d *DB) DeleteAssignment(ctx context.Context, id uuid.UUID) error {
	return authExecOne(ctx, d.pool, "DELETE FROM role_assignments WHERE id = $1", id)
}

// Unassign removes the assignment of role to a user or group on object
// (nil: the global one); ErrNotFound when there is none.
func (d *DB) Unassign(ctx context.Context, role string, user, group, object *uuid.UUID) error {
	return authExecOne(ctx, d.pool, `DELETE FROM role_assignments ra USING roles ro
		WHERE ro.id = ra.role_id AND ro.name = $1 AND ra.user_id IS NOT DISTINCT FROM $2
		AND ra.group_id IS NOT DISTINCT FROM $3 AND ra.object_id IS NOT DISTINCT FROM $4`, role, user, group, object)
}

var assignmentList = listSpec{
	from: "role_assignments ra JOIN roles ro ON ro.id = ra.role_id",
	columns: map[string]string{"pulp_id": "ra.id", "pulp_created": "ra.created_at", "role": "ro.name",
		"user": "ra.user_id", "group": "ra.group_id", "object_id": "ra.object_id", "content_object": "ra.object_href"},
	idExpr: "ra.id",
}

// ListAssignments lists assignments; filter on user, group (ids),
// object_id, content_object (href) or role (name).
func (d *DB) ListAssignments(ctx context.Context, p ListParams) (Page[Assignment], error) {
	return listRows(ctx, d.pool, assignmentList, assignmentColumns, p, scanAssignment)
}

// Permissions lists what user may do: the permissions of the roles it holds
// itself or through its groups, globally, plus on object when not nil.
func (d *DB) Permissions(ctx context.Context, user uuid.UUID, object *uuid.UUID) ([]string, error) {
	rows, err := d.pool.Query(ctx, `SELECT DISTINCT p FROM role_assignments ra
		JOIN roles ro ON ro.id = ra.role_id, unnest(ro.permissions) p
		WHERE (ra.user_id = $1 OR ra.group_id IN (SELECT group_id FROM group_users WHERE user_id = $1))
		AND (ra.object_id IS NULL OR ra.object_id = $2) ORDER BY p`, user, object)
	if err != nil {
		return nil, translate(err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// Visible is the value of a list filter with the "visible" lookup: it keeps
// the rows on which User holds, through an object-level role of its own or
// of one of its groups, a permission matching the LIKE pattern Perm. It is
// one subquery, so scoping a list costs no query per row.
type Visible struct {
	User uuid.UUID
	Perm string
}

func visibleCondition(col string, v Visible, arg func(any) string) string {
	u := arg(v.User)
	return col + ` IN (SELECT ra.object_id FROM role_assignments ra JOIN roles ro ON ro.id = ra.role_id
		WHERE ra.object_id IS NOT NULL
		AND (ra.user_id = ` + u + ` OR ra.group_id IN (SELECT group_id FROM group_users WHERE user_id = ` + u + `))
		AND EXISTS (SELECT 1 FROM unnest(ro.permissions) p WHERE p LIKE ` + arg(v.Perm) + `))`
}

func authExecOne(ctx context.Context, q querier, sql string, args ...any) error {
	tag, err := q.Exec(ctx, sql, args...)
	if err != nil {
		return translate(err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// GroupsOfUsers maps each of users to its groups, in one query for a page.
func (d *DB) GroupsOfUsers(ctx context.Context, users []uuid.UUID) (map[uuid.UUID][]Group, error) {
	rows, err := d.pool.Query(ctx, `SELECT gu.user_id, `+groupColumns+` FROM group_users gu
		JOIN groups g ON g.id = gu.group_id WHERE gu.user_id = ANY($1) ORDER BY g.name`, users)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	out := map[uuid.UUID][]Group{}
	for rows.Next() {
		var u uuid.UUID
		var g Group
		if err := rows.Scan(&u, &g.ID, &g.CreatedAt, &g.UpdatedAt, &g.Name); err != nil {
			return nil, translate(err)
		}
		out[u] = append(out[u], g)
	}
	return out, translate(rows.Err())
}
