"""The demo schema: the seed's users and posts, plus comments, files, emails and counters."""

from console.emulator.schema import define_schema, define_table
from console.emulator.validators import v

user_fields = {
    "clerkId": v.string(),
    "email": v.string(),
    "name": v.optional(v.string()),
    "createdAt": v.number(),
}

post_fields = {
    "title": v.string(),
    "content": v.string(),
    "authorId": v.id("users"),
    "published": v.boolean(),
    "createdAt": v.number(),
    "updatedAt": v.number(),
}

comment_fields = {
    "postId": v.id("posts"),
    "authorId": v.id("users"),
    "body": v.string(),
    "createdAt": v.number(),
}

file_fields = {
    "storageId": v.id("_storage"),
    "filename": v.string(),
    "contentType": v.string(),
    "uploadedBy": v.optional(v.id("users")),
    "createdAt": v.number(),
}

email_fields = {
    "to": v.string(),
    "subject": v.string(),
    "body": v.string(),
    "sentAt": v.number(),
}

counter_fields = {
    "name": v.string(),
    "value": v.number(),
}

schema = define_schema(
    {
        "users": define_table(user_fields).index("by_clerkId", ["clerkId"]).index("by_email", ["email"]),
        "posts": define_table(post_fields)
        .index("by_author", ["authorId"])
        .index("by_published", ["published"])
        .index("by_author_and_published", ["authorId", "published"]),
        "comments": define_table(comment_fields).index("by_post", ["postId"]),
        "files": define_table(file_fields).index("by_storage", ["storageId"]),
        "emails": define_table(email_fields).index("by_to", ["to"]),
        "counters": define_table(counter_fields).index("by_name", ["name"]),
    },
    schema_validation=True,
)


def document(table: str, fields: dict):
    """The validator of a stored document of `table`: its fields plus `_id` and `_creationTime`."""
    return v.object({"_id": v.id(table), "_creationTime": v.number(), **fields})


user_doc = document("users", user_fields)
post_doc = document("posts", post_fields)
comment_doc = document("comments", comment_fields)
file_doc = document("files", file_fields)
email_doc = document("emails", email_fields)
