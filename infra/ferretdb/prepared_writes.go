// Added to FerretDB's SQLite backend (package sqlite) by infra/store.py when it builds FerretDB.

package sqlite

import (
	"fmt"
	"strings"

	"github.com/FerretDB/FerretDB/internal/backends/sqlite/metadata"
	"github.com/FerretDB/FerretDB/internal/handler/sjson"
	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/lazyerrors"
	"github.com/FerretDB/FerretDB/internal/util/must"
)

// statement is one SQL statement of a write and its arguments, encoded before the write transaction.
type statement struct {
	q    string
	args []any
}

// prepareInsertStatements encodes `docs` for INSERTs of `batchSize` documents each, before the write
// transaction begins: a database's writes take turns (writer_turn.go), and encoding is most of their work,
// which concurrent commands can then do side by side.
func prepareInsertStatements(table string, capped bool, docs []*types.Document, batchSize int) ([]statement, error) {
	if batchSize < 1 {
		panic("batch-size should be greater or equal to 1")
	}

	statements := make([]statement, 0, (len(docs)+batchSize-1)/batchSize)

	for len(docs) > 0 {
		var batch []*types.Document

		i := min(batchSize, len(docs))
		batch, docs = docs[:i], docs[i:]

		q, args, err := prepareInsertStatement(table, capped, batch)
		if err != nil {
			return nil, lazyerrors.Error(err)
		}

		statements = append(statements, statement{q: q, args: args})
	}

	return statements, nil
}

// prepareUpdateRows encodes each of `docs` and its `_id` (the arguments of UpdateAll's statement) before the
// write transaction begins, for the same reason.
func prepareUpdateRows(docs []*types.Document) ([][2]any, error) {
	rows := make([][2]any, len(docs))

	for i, doc := range docs {
		b, err := sjson.Marshal(doc)
		if err != nil {
			return nil, lazyerrors.Error(err)
		}

		id, _ := doc.Get("_id")
		must.NotBeZero(id)

		rows[i] = [2]any{string(b), string(must.NotFail(sjson.MarshalSingleValue(id)))}
	}

	return rows, nil
}

// updateRowsPerStatement bounds one UPDATE of many rows: two parameters each, well under SQLite's 32,766.
const updateRowsPerStatement = 500

// prepareUpdateStatements returns the UPDATEs that apply `rows` (from prepareUpdateRows): up to
// updateRowsPerStatement rows each, joined to their `_id`s through the `_id` index, or, for a single row or
// when two rows have one `_id`, UpdateAll's own statement `single` per row, in order. The driver (modernc's)
// parses a statement again on every execution, and one statement per document made parsing ~6% of the
// store's CPU under aggregate's writes.
func prepareUpdateStatements(single, table string, rows [][2]any) []statement {
	if len(rows) < 2 || !distinctIDs(rows) {
		statements := make([]statement, len(rows))
		for i, row := range rows {
			statements[i] = statement{q: single, args: []any{row[0], row[1]}}
		}

		return statements
	}

	statements := make([]statement, 0, (len(rows)+updateRowsPerStatement-1)/updateRowsPerStatement)

	for len(rows) > 0 {
		var chunk [][2]any

		i := min(updateRowsPerStatement, len(rows))
		chunk, rows = rows[:i], rows[i:]

		args := make([]any, 0, 2*len(chunk))
		for _, row := range chunk {
			args = append(args, row[0], row[1])
		}

		q := fmt.Sprintf(`UPDATE %q SET %s = v.column1 FROM (VALUES %s) AS v WHERE %s = v.column2`,
			table, metadata.DefaultColumn, strings.TrimSuffix(strings.Repeat("(?, ?), ", len(chunk)), ", "),
			metadata.IDColumn)

		statements = append(statements, statement{q: q, args: args})
	}

	return statements
}

// distinctIDs reports whether no two of `rows` have one `_id`.
func distinctIDs(rows [][2]any) bool {
	seen := make(map[any]struct{}, len(rows))
	for _, row := range rows {
		if _, ok := seen[row[1]]; ok {
			return false
		}

		seen[row[1]] = struct{}{}
	}

	return true
}
