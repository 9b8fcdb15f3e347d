"""`_system/cli/*`: what `npx convex data`, `function-spec` and friends call."""

from __future__ import annotations

from console.emulator.functions import query
from console.emulator.system import spec
from console.emulator.validators import pagination_opts_validator, v

MAXIMUM_ROWS_READ = 10_000  # _system/paginationLimits.ts
MAXIMUM_BYTES_READ = 5_000_000
COMPONENT_ID = v.optional(v.union(v.string(), v.null()))


def user_table_names(db) -> list[str]:
    return [name for name in db.table_mapping().values() if not name.startswith("_")]


def page_with_limits(query_obj, pagination_opts: dict) -> dict:
    opts = dict(pagination_opts)
    opts["maximumRowsRead"] = MAXIMUM_ROWS_READ
    opts["maximumBytesRead"] = MAXIMUM_BYTES_READ
    return query_obj.paginate(opts)


def modules(deployment) -> dict:
    db = deployment.db

    @query(args={"paginationOpts": pagination_opts_validator})
    def tables(ctx, args):
        return {"page": [{"name": name} for name in user_table_names(db)], "isDone": True, "continueCursor": "end"}

    @query(
        args={
            "table": v.string(),
            "order": v.union(v.literal("asc"), v.literal("desc")),
            "paginationOpts": pagination_opts_validator,
        }
    )
    def table_data(ctx, args):
        table = args["table"]
        reader = ctx.db.system if table.startswith("_") else ctx.db
        return page_with_limits(reader.query(table).order(args["order"]), args["paginationOpts"])

    @query(args={"tableName": v.string()})
    def table_size(ctx, args):
        return float(ctx.db.query(args["tableName"]).count())

    @query(args={"componentId": COMPONENT_ID})
    def api_spec(ctx, args):
        return spec.api_spec(deployment)

    @query(args={})
    def cloud_url(ctx, args):
        return deployment.cloud_url

    return {
        "_system/cli/tables": {"default": tables},
        "_system/cli/tableData": {"default": table_data},
        "_system/cli/tableSize": {"default": table_size},
        "_system/cli/modules": {"apiSpec": api_spec},
        "_system/cli/convexUrl": {"cloudUrl": cloud_url},
    }
