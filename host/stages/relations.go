package stages

import (
	"encoding/json"
	"fmt"

	"github.com/google/uuid"

	"github.com/pulpo/pulpo/host/db"
)

// lateRelation is a relation whose target was neither stored nor emitted
// before its unit was saved: the spec lets a first stage emit units in any
// order, so the target may still come later in the same sync.
type lateRelation struct {
	from          uuid.UUID
	fromType      string
	fromKey       string
	name          string
	toType, toKey string
	raw, fields   json.RawMessage
}

// keyFields is a unit's natural key as a JSON object, to name it in errors.
func (r *Run) keyFields(u *unit) string {
	var all map[string]json.RawMessage
	if err := json.Unmarshal(u.dc.Fields, &all); err != nil {
		return u.key
	}
	key := map[string]json.RawMessage{}
	for _, f := range r.p.Types[u.dc.Type].NaturalKey {
		key[f] = all[f]
	}
	b, err := json.Marshal(key)
	if err != nil {
		return u.key
	}
	return string(b)
}

// lateBatch bounds the natural keys of one lookup of late targets.
const lateBatch = 5000

// resolveLate links the late relations once every emitted unit is saved; a
// target still missing then fails the sync, naming the unit and relation.
func (r *Run) resolveLate() error {
	for len(r.late) > 0 {
		chunk := r.late[:min(lateBatch, len(r.late))]
		r.late = r.late[len(chunk):]
		want := map[string][]string{}
		for _, l := range chunk {
			want[l.toType] = append(want[l.toType], l.toKey)
		}
		found := map[[2]string]uuid.UUID{}
		for typ, keys := range want {
			cs, err := r.p.DB.ContentByKeys(r.ctx, typ, keys, nil)
			if err != nil {
				return fmt.Errorf("resolve relations: %w", err)
			}
			for _, c := range cs {
				found[[2]string{typ, c.NaturalKey}] = c.ID
			}
		}
		out := make([]db.Relation, 0, len(chunk))
		for _, l := range chunk {
			to, ok := found[[2]string{l.toType, l.toKey}]
			if !ok {
				return fmt.Errorf("relation %s of %s unit %s: target %s %s was not emitted in this sync and is not stored",
					l.name, l.fromType, l.fromKey, l.toType, l.raw)
			}
			out = append(out, db.Relation{From: l.from, Name: l.name, To: to, Fields: l.fields})
		}
		if err := r.p.DB.AddRelations(r.ctx, out); err != nil {
			return fmt.Errorf("save relations: %w", err)
		}
	}
	return nil
}
