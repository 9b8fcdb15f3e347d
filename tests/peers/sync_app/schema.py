from console.emulator.schema import define_schema, define_table
from console.emulator.validators import v

schema = define_schema(
    {
        "messages": define_table({"channel": v.string(), "body": v.string()}).index("by_channel", ["channel"]),
        "counters": define_table({"name": v.string(), "value": v.number()}).index("by_name", ["name"]),
        "blobs": define_table({"name": v.string(), "data": v.string()}).index("by_name", ["name"]),
    }
)
