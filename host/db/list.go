package db

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Filter narrows a list: Field is an API field name the list declares, Op a
// Django-style lookup (exact, iexact, in, contains, icontains, startswith,
// istartswith, gt, gte, lt, lte, isnull, has), Value its argument ([]string
// for in, bool for isnull).
type Filter struct {
	Field string
	Op    string
	Value any
}

// ListParams selects a page of a list. Ordering holds API field names, each
// optionally prefixed with "-" for descending.
type ListParams struct {
	Filters  []Filter
	Ordering []string
	Limit    int
	Offset   int
}

// Page is one page of a list and the count of all matching rows.
type Page[T any] struct {
	Count int64
	Items []T
}

// ErrBadFilter means a filter or ordering names an unknown field or lookup.
var ErrBadFilter = errors.New("bad filter")

// listSpec describes how a list endpoint maps onto SQL.
type listSpec struct {
	from    string            // FROM clause, e.g. "repositories r"
	columns map[string]string // API field -> SQL expression usable in WHERE and ORDER BY
	// special filters build their own condition; arg adds a parameter and
	// returns its placeholder.
	special map[string]func(f Filter, arg func(any) string) (string, error)
	idExpr  string // unique, time-ordered tie-breaker, e.g. "r.id"
}

// where builds the WHERE clause and its arguments.
func (s listSpec) where(filters []Filter, args []any) (string, []any, error) {
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	var conds []string
	for _, f := range filters {
		if fn, ok := s.special[f.Field]; ok {
			c, err := fn(f, arg)
			if err != nil {
				return "", nil, err
			}
			conds = append(conds, c)
			continue
		}
		col, ok := s.columns[f.Field]
		if !ok {
			return "", nil, fmt.Errorf("%w: unknown field %q", ErrBadFilter, f.Field)
		}
		c, err := condition(col, f, arg)
		if err != nil {
			return "", nil, err
		}
		conds = append(conds, c)
	}
	if len(conds) == 0 {
		return "", args, nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args, nil
}

func condition(col string, f Filter, arg func(any) string) (string, error) {
	switch f.Op {
	case "", "exact":
		return col + " = " + arg(f.Value), nil
	case "iexact":
		return "lower(" + col + ") = lower(" + arg(f.Value) + ")", nil
	case "ne":
		return col + " IS DISTINCT FROM " + arg(f.Value), nil
	case "in":
		return col + " = ANY(" + arg(f.Value) + ")", nil
	case "contains", "icontains", "startswith", "istartswith":
		s, ok := f.Value.(string)
		if !ok {
			return "", fmt.Errorf("%w: %s__%s needs text", ErrBadFilter, f.Field, f.Op)
		}
		pat := escapeLike(s) + "%"
		if !strings.HasSuffix(f.Op, "startswith") {
			pat = "%" + pat
		}
		op := " LIKE "
		if f.Op[0] == 'i' {
			op = " ILIKE "
		}
		return col + op + arg(pat), nil
	case "gt", "gte", "lt", "lte":
		ops := map[string]string{"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
		return col + " " + ops[f.Op] + " " + arg(f.Value), nil
	case "isnull":
		if b, _ := f.Value.(bool); b {
			return col + " IS NULL", nil
		}
		return col + " IS NOT NULL", nil
	case "has":
		return arg(f.Value) + " = ANY(" + col + ")", nil
	case "visible":
		v, ok := f.Value.(Visible)
		if !ok {
			return "", fmt.Errorf("%w: %s__visible needs a Visible", ErrBadFilter, f.Field)
		}
		return visibleCondition(col, v, arg), nil
	}
	return "", fmt.Errorf("%w: unknown lookup %q on %q", ErrBadFilter, f.Op, f.Field)
}

func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// orderBy builds the ORDER BY clause; the id tie-breaker keeps pages stable.
func (s listSpec) orderBy(ordering []string) (string, error) {
	var parts []string
	dir := "DESC"
	for _, o := range ordering {
		desc := strings.HasPrefix(o, "-")
		name := strings.TrimPrefix(o, "-")
		col, ok := s.columns[name]
		if !ok {
			return "", fmt.Errorf("%w: cannot order by %q", ErrBadFilter, name)
		}
		d := "ASC"
		if desc {
			d = "DESC"
		}
		parts = append(parts, col+" "+d)
		dir = d
	}
	if len(ordering) == 0 {
		dir = "DESC" // newest first, as Pulp lists
	}
	parts = append(parts, s.idExpr+" "+dir)
	return " ORDER BY " + strings.Join(parts, ", "), nil
}

// listRows runs the count and the page queries of a list.
func listRows[T any](ctx context.Context, q querier, s listSpec, selectCols string, p ListParams,
	scan func(pgx.Row) (T, error)) (Page[T], error) {
	var page Page[T]
	where, args, err := s.where(p.Filters, nil)
	if err != nil {
		return page, err
	}
	order, err := s.orderBy(p.Ordering)
	if err != nil {
		return page, err
	}
	if err := q.QueryRow(ctx, "SELECT count(*) FROM "+s.from+where, args...).Scan(&page.Count); err != nil {
		return page, translate(err)
	}
	if page.Count == 0 || p.Offset >= int(page.Count) {
		return page, nil
	}
	page.Items, err = queryItems(ctx, q, "SELECT "+selectCols+" FROM "+s.from+where+order+limitOffset(p), args, scan)
	return page, err
}

func limitOffset(p ListParams) string {
	return fmt.Sprintf(" LIMIT %d OFFSET %d", max(p.Limit, 0), max(p.Offset, 0))
}

func queryItems[T any](ctx context.Context, q querier, sql string, args []any, scan func(pgx.Row) (T, error)) ([]T, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		t, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, translate(rows.Err())
}
