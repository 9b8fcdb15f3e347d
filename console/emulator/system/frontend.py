"""`_system/frontend/*`: what the Convex dashboard calls (PROTOCOL §3.1-3.5, QUERIES §3)."""

from __future__ import annotations

from console.emulator.errors import ConvexEngineError, ConvexError
from console.emulator.functions import mutation, query
from console.emulator.system import filters as dash_filters
from console.emulator.system import spec
from console.emulator.system.cli import COMPONENT_ID, page_with_limits, user_table_names
from console.emulator.validators import pagination_opts_validator, v
from console.values import UNDEFINED

MAX_IMPORT_COUNT = 4096
MAX_DOCUMENT_DELETIONS = 4096
MAX_TABLE_MAPPING = 1000
HIDDEN_INDEXES = ("by_id", "by_creation_time")
VISIBLE_SYSTEM_TABLES = ("_scheduled_jobs", "_file_storage")
# The emulator stores the virtual tables directly; their IDs are the private tables' IDs.
PRIVATE_NAMES = {"_scheduled_functions": "_scheduled_jobs", "_storage": "_file_storage"}
SUCCESS = {"success": True}


def _reader_for(ctx, table: str):
    return ctx.db.system if table.startswith("_") else ctx.db


def _system_table_alias(table: str) -> str:
    return {"_file_storage": "_storage", "_scheduled_jobs": "_scheduled_functions"}.get(table, table)


def _empty_page(page=()) -> dict:
    return {"page": list(page), "isDone": True, "continueCursor": ""}


def paginated_table_documents(ctx, args, schema_json: str | None) -> dict:
    """The dashboard's data view query: filters applied exactly as the system UDF (QUERIES §3.4)."""
    table, raw_filters = args["table"], args.get("filters")
    parsed = None
    if raw_filters:
        try:
            parsed = dash_filters.check_expression(dash_filters.decode_filters(raw_filters))
        except dash_filters.FilterParseError as error:
            raise ConvexEngineError(str(error)) from None
    if parsed and parsed["clauses"]:
        errors = dash_filters.value_errors(parsed)
        if errors:
            return _empty_page(errors)
    enabled = [c for c in (parsed or {}).get("clauses", []) if c.get("enabled") is not False]
    order = (parsed or {}).get("order") or "desc"
    initializer = ctx.db.query(table)
    query_obj = None
    index = (parsed or {}).get("index")
    has_index_filter = bool(index) and (
        "search" in index or any(c.get("enabled") for c in index.get("clauses", []))
    )
    if index:
        query_obj, error = _index_query(initializer, index, table, order, schema_json)
        if error is not None:
            return _empty_page([error])
    builtin = [c for c in enabled if c.get("op") not in dash_filters.TYPE_OPS]
    type_clauses = [c for c in enabled if c.get("op") in dash_filters.TYPE_OPS]
    if builtin:
        single = builtin[0]
        if not has_index_filter and len(builtin) == 1 and single.get("field") == "_id" and single.get("op") == "eq":
            return _single_document(ctx, table, single.get("value"))
        base = query_obj or initializer.order(order)
        query_obj = base.filter(lambda q: dash_filters.builtin_expression(q, builtin))
    result = page_with_limits(query_obj or initializer.order(order), args["paginationOpts"])
    result["page"] = dash_filters.apply_type_clauses(result["page"], type_clauses)
    return result


def _index_query(initializer, index: dict, table: str, order: str, schema_json: str | None):
    name = index.get("name")
    clauses = index.get("clauses") or []
    selected = next(
        (i for i in dash_filters.available_indexes(schema_json, table) if i.get("indexDescriptor") == name),
        None,
    )
    if "search" in index:
        error = dash_filters.validate_search_filter(name, clauses, selected, order)
        if error:
            return None, error
        search = index["search"]
        return initializer.with_search_index(
            name, lambda q: dash_filters.apply_search_clauses(q, search, clauses, selected)
        ), None
    error = dash_filters.validate_index_filter(name, clauses, selected)
    if error:
        return None, error
    query_obj = initializer.with_index(name, lambda q: dash_filters.apply_index_clauses(q, clauses, selected))
    return query_obj.order(order), None


def _single_document(ctx, table: str, value) -> dict:
    if not isinstance(value, str):
        return _empty_page()
    normalized = ctx.db.normalize_id(table, value)
    if normalized is None:
        return _empty_page()
    document = ctx.db.get(normalized)
    return _empty_page([document] if document is not None else [])


def _patch_fields(fields: dict) -> dict:
    return {key: UNDEFINED if val == dash_filters.UNDEFINED_PLACEHOLDER else val for key, val in fields.items()}


def modules(deployment) -> dict:  # noqa: C901 - one closure per system function
    db = deployment.db

    @query(args={"componentId": COMPONENT_ID})
    def get_table_mapping(ctx, args):
        mapping = {}
        for number, name in sorted(db.table_mapping().items(), key=lambda item: int(item[0])):
            name = PRIVATE_NAMES.get(name, name)  # Convex names the tables behind the virtual ones
            if not name.startswith("_") or name in VISIBLE_SYSTEM_TABLES:
                mapping[str(number)] = name
        return dict(list(mapping.items())[:MAX_TABLE_MAPPING])

    @query(args={"tableName": v.string(), "componentId": COMPONENT_ID})
    def table_size(ctx, args):
        if not args["tableName"]:
            return 0.0
        return float(ctx.db.query(args["tableName"]).count())

    @query(args={"componentId": COMPONENT_ID})
    def size_of_all_tables(ctx, args):
        return float(sum(ctx.db.query(name).count() for name in user_table_names(db)))

    @query(
        args={
            "paginationOpts": pagination_opts_validator,
            "table": v.string(),
            "filters": v.union(v.string(), v.null()),
            "componentId": COMPONENT_ID,
        }
    )
    def paginated(ctx, args):
        return paginated_table_documents(ctx, args, db.schema_json())

    @query(args={"tableName": v.optional(v.union(v.string(), v.null())), "tableNamespace": v.union(v.string(), v.null())})
    def indexes(ctx, args):
        table = args.get("tableName")
        if not table or table not in db.table_names(include_system=True):
            return None
        return [
            {"name": index["name"], "staged": bool(index.get("staged", False)), "fields": index["fields"],
             "backfill": {"state": "done"}}
            for index in db.index_list(table)
            if index["name"] not in HIDDEN_INDEXES
        ]

    @query(args={"componentId": COMPONENT_ID})
    def get_schemas(ctx, args):
        active = db.schema_json()
        return {} if active is None else {"active": active}

    @query(args={"componentId": COMPONENT_ID})
    def schema_validation_progress(ctx, args):
        return None

    @query(args={"componentId": COMPONENT_ID, "ids": v.array(v.object({"id": v.string(), "tableName": v.string()}))})
    def list_by_id(ctx, args):
        result = []
        for item in args["ids"]:
            table = item["tableName"]
            reader = _reader_for(ctx, table)
            normalized = reader.normalize_id(_system_table_alias(table), item["id"])
            result.append(None if normalized is None else reader.get(normalized))
        return result

    @mutation(args={"componentId": COMPONENT_ID, "table": v.string(), "documents": v.array(v.any())})
    def add_document(ctx, args):
        documents = args["documents"]
        if len(documents) > MAX_IMPORT_COUNT:
            return {"success": False, "error": f"Can’t import more than {MAX_IMPORT_COUNT} documents at once."}
        try:
            for document in documents:
                ctx.db.insert(args["table"], document)
        except ConvexError:
            raise
        except Exception as error:  # rewrapped: it may be a schema validation error
            raise ConvexError(str(error)) from None
        return SUCCESS

    @mutation(args={"table": v.string(), "fields": v.any(), "ids": v.optional(v.array(v.string())), "componentId": COMPONENT_ID})
    def patch_documents_fields(ctx, args):
        fields = args["fields"]
        if args.get("ids") is not None:
            documents = [ctx.db.get(doc_id) for doc_id in args["ids"]]
        else:
            documents = ctx.db.query(args["table"]).collect()
        try:
            patch = _patch_fields(fields if isinstance(fields, dict) else {})
            for document in documents:
                if document is not None:
                    ctx.db.patch(document["_id"], dict(patch))
        except Exception as error:
            raise ConvexError(str(error)) from None
        return SUCCESS

    @mutation(args={"id": v.string(), "document": v.any(), "componentId": COMPONENT_ID})
    def replace_document(ctx, args):
        if ctx.db.get(args["id"]) is None:
            return {"success": False, "error": "Document does not exist."}
        try:
            ctx.db.replace(args["id"], args["document"])
        except Exception as error:
            raise ConvexError(str(error)) from None
        return SUCCESS

    @mutation(args={"componentId": COMPONENT_ID, "toDelete": v.array(v.object({"id": v.string(), "tableName": v.string()}))})
    def delete_documents(ctx, args):
        to_delete = args["toDelete"]
        if len(to_delete) > MAX_DOCUMENT_DELETIONS:
            return {
                "success": False,
                "error": f"You can't delete more than {MAX_DOCUMENT_DELETIONS}. Try selecting fewer documents instead..",
            }
        for item in to_delete:
            ctx.db.delete(item["id"])
        return SUCCESS

    @query(args={"componentId": COMPONENT_ID})
    def modules_list(ctx, args):
        return spec.module_list(deployment)

    @query(args={"componentId": COMPONENT_ID, "function": v.string()})
    def args_validator(ctx, args):
        import json

        path, _, name = args["function"].partition(":")
        function = deployment.app.functions.get(f"{path}.js:{name or 'default'}")
        if function is None:
            return None
        return json.dumps(function.args if function.args is not None else spec.ANY)

    @query(args={})
    def site_url(ctx, args):
        return deployment.site_url

    @query(args={"componentId": COMPONENT_ID})
    def list_auth_providers(ctx, args):
        from console.emulator.auth import list_auth_providers as provider_rows

        return provider_rows(deployment)

    return {
        "_system/frontend/getTableMapping": {"default": get_table_mapping},
        "_system/frontend/tableSize": {"default": table_size, "sizeOfAllTables": size_of_all_tables},
        "_system/frontend/paginatedTableDocuments": {"default": paginated},
        "_system/frontend/indexes": {"default": indexes},
        "_system/frontend/getSchemas": {"default": get_schemas, "schemaValidationProgress": schema_validation_progress},
        "_system/frontend/listById": {"default": list_by_id},
        "_system/frontend/addDocument": {"default": add_document},
        "_system/frontend/patchDocumentsFields": {"default": patch_documents_fields},
        "_system/frontend/replaceDocument": {"default": replace_document},
        "_system/frontend/deleteDocuments": {"default": delete_documents},
        "_system/frontend/modules": {"list": modules_list, "argsValidator": args_validator},
        "_system/frontend/convexSiteUrl": {"default": site_url},
        "_system/frontend/listAuthProviders": {"default": list_auth_providers},
    }
