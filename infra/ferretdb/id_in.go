// Added to FerretDB's SQLite backend (package sqlite) by infra/store.py when it builds FerretDB.

package sqlite

import (
	"fmt"
	"strings"

	"github.com/FerretDB/FerretDB/internal/backends/sqlite/metadata"
	"github.com/FerretDB/FerretDB/internal/handler/sjson"
	"github.com/FerretDB/FerretDB/internal/types"
)

// maxIDsInClause bounds the SQL variables one pushed-down lookup uses.
const maxIDsInClause = 1000

// idInClause pushes `{_id: {$in: [...]}}` down to the `_id` index when every value is a string or an
// ObjectID, as FerretDB already does for `{_id: value}`. Otherwise it returns no clause and the
// query scans the table, as before. The handler filters every returned document again, so the
// clause only narrows what SQLite reads.
func idInClause(filter *types.Document) (string, []any) {
	if filter.Len() != 1 {
		return "", nil
	}

	cond, _ := filter.Get("_id")
	doc, ok := cond.(*types.Document)
	if !ok || doc.Len() != 1 {
		return "", nil
	}

	in, _ := doc.Get("$in")
	values, ok := in.(*types.Array)
	if !ok || values.Len() == 0 || values.Len() > maxIDsInClause {
		return "", nil
	}

	args := make([]any, 0, values.Len())

	for i := 0; i < values.Len(); i++ {
		v, _ := values.Get(i)

		switch v.(type) {
		case string, types.ObjectID:
			value, err := sjson.MarshalSingleValue(v)
			if err != nil {
				return "", nil
			}

			args = append(args, string(value))
		default:
			return "", nil
		}
	}

	return fmt.Sprintf(` WHERE %s IN (?%s)`, metadata.IDColumn, strings.Repeat(`, ?`, len(args)-1)), args
}

// idOnlySelect reads just each document's `_id`, as a document of that one field (backends.QueryParams.OnlyIDs):
// SQLite takes it from the stored JSON without FerretDB decoding the rest.
func idOnlySelect(table string) string {
	return fmt.Sprintf(`SELECT json_object('$s', json_object('p', json_object('_id', %[1]s->'$."$s".p._id'), `+
		`'$k', json_array('_id')), '_id', %[1]s->'$._id') AS %[1]s FROM %[2]q`, metadata.DefaultColumn, table)
}
