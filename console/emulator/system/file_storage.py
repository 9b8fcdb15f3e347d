"""`_system/frontend/fileStorageV2:*`: the dashboard's Files page (PROTOCOL §3.4; backend
system-udfs `fileStorageV2.ts`)."""

from __future__ import annotations

from console.emulator import storage
from console.emulator.functions import mutation, query
from console.emulator.system.cli import COMPONENT_ID
from console.emulator.validators import pagination_opts_validator, v

MODULE = "_system/frontend/fileStorageV2"

FILTERS = v.optional(
    v.object({
        "minCreationTime": v.optional(v.number()),
        "maxCreationTime": v.optional(v.number()),
        "order": v.optional(v.union(v.literal("asc"), v.literal("desc"))),
    })
)


def _with_url(ctx, file: dict) -> dict:
    return {"url": ctx.storage.get_url(file["_id"]), **file}


def _files_query(ctx, filters: dict):
    files = ctx.db.system.query(storage.STORAGE_TABLE)
    low, high = filters.get("minCreationTime"), filters.get("maxCreationTime")
    if low is not None or high is not None:
        def creation_range(q):
            if low is not None:
                q = q.gte("_creationTime", low)
            if high is not None:
                q = q.lte("_creationTime", high)
            return q

        files = files.with_index("by_creation_time", creation_range)
    return files.order(filters.get("order") or "desc")


def modules(deployment) -> dict:
    storage.install(deployment)

    @query(args={"componentId": COMPONENT_ID})
    def num_files(ctx, args):
        return float(ctx.db.system.query(storage.STORAGE_TABLE).count())

    @query(args={"paginationOpts": pagination_opts_validator, "filters": FILTERS, "componentId": COMPONENT_ID})
    def file_metadata(ctx, args):
        result = _files_query(ctx, args.get("filters") or {}).paginate(args["paginationOpts"])
        return {**result, "page": [_with_url(ctx, file) for file in result["page"]]}

    @query(args={"storageId": v.string(), "componentId": COMPONENT_ID})
    def get_file(ctx, args):
        file = ctx.db.system.get(args["storageId"])
        return None if file is None else _with_url(ctx, file)

    @mutation(args={"storageId": v.id("_storage"), "componentId": COMPONENT_ID})
    def delete_file(ctx, args):
        ctx.storage.delete(args["storageId"])

    @mutation(args={"storageIds": v.array(v.id("_storage")), "componentId": COMPONENT_ID})
    def delete_files(ctx, args):
        for storage_id in args["storageIds"]:
            ctx.storage.delete(storage_id)

    @mutation(args={"componentId": COMPONENT_ID})
    def generate_upload_url(ctx, args):
        return ctx.storage.generate_upload_url()

    return {
        MODULE: {
            "numFiles": num_files,
            "fileMetadata": file_metadata,
            "getFile": get_file,
            "deleteFile": delete_file,
            "deleteFiles": delete_files,
            "generateUploadUrl": generate_upload_url,
        }
    }
