"""balrog-engine: a Balrog-compatible update server core.

The public API for plugin authors and embedders is re-exported here; plugins
import only these names.
"""
from .allowlist import apply_force
from .addons import ADDONS_FOOTER, ADDONS_HEADER, AddonFileSchema, AddonListBlob
from .blob_fields import (
    AliasSchema,
    KeyedMap,
    PlatformEntry,
    StrictBoolean,
    StrictNumber,
    StrictSchema,
    name_field,
    product_field,
    schema_version_field,
    uri_field,
)
from .blobs import (
    BadRequest,
    BlobType,
    BlobValidationError,
    Evaluation,
    Release,
    RenderContext,
    Serve,
    XmlParts,
    flatten_errors,
)
from .conditions import Condition, ConditionContext
from .configurable import Configurable, HttpUrl
from .metrics import MetricsError, MetricsSource
from .notifiers import HeadsUp, Notifier, NotifyError
from .engine import Engine
from .explain import (
    ChangeError,
    ExplainInputError,
    Explanation,
    LintFinding,
    Preview,
    RuleChange,
    ServerState,
    UnparsableRequest,
    explain,
    lint,
    parse_change,
    preview,
)
from .matching import (
    channel_matches,
    compile_string_expression,
    compile_version_expression,
    fallback_channel,
    glob_match,
    parse_query_version,
)
from .plugins import PluginRegistry, hookimpl, load_plugins
from .query import Force, UpdateQuery
from .responses import Response
from .storage import RULE_COLUMNS, Dataset, DatasetRejected, Session, Storage, StoredRelease, release_conflict_rule
from .versioned import (
    AlreadyExists,
    Change,
    ConflictRule,
    Invalid,
    NotFound,
    StaleVersion,
    VersionError,
    VersionedTable,
    history_table_for,
)
from .versions import (
    InvalidPin,
    InvalidVersion,
    MozillaVersion,
    compare_to_pin,
    parse_loose,
    parse_mozilla,
    parse_pin,
)

__all__ = [
    "AlreadyExists", "Change", "ConflictRule", "Invalid", "NotFound", "Session", "StaleVersion", "VersionError",
    "VersionedTable",
    "history_table_for", "release_conflict_rule",
    "ADDONS_FOOTER", "ADDONS_HEADER", "AddonFileSchema", "AddonListBlob", "AliasSchema", "BadRequest",
    "BlobType", "BlobValidationError", "Condition", "ConditionContext", "Dataset", "DatasetRejected",
    "Engine", "Evaluation", "Force", "InvalidPin", "InvalidVersion", "KeyedMap", "MozillaVersion",
    "PlatformEntry", "PluginRegistry", "RULE_COLUMNS", "Release", "RenderContext", "Response", "Serve", "Storage",
    "StoredRelease", "StrictBoolean", "StrictNumber", "StrictSchema", "UpdateQuery", "XmlParts",
    "apply_force", "channel_matches", "compare_to_pin", "compile_string_expression", "compile_version_expression",
    "fallback_channel", "flatten_errors", "glob_match", "hookimpl", "load_plugins", "name_field",
    "parse_loose", "parse_mozilla", "parse_pin", "parse_query_version", "product_field",
    "schema_version_field", "uri_field",
    # the agent's plugin contracts (balrog_engine.configurable, .metrics, .notifiers)
    "Configurable", "HeadsUp", "HttpUrl", "MetricsError", "MetricsSource", "Notifier", "NotifyError",
    # explain and simulate (balrog_engine.explain)
    "ChangeError", "ExplainInputError", "Explanation", "LintFinding", "Preview", "RuleChange", "ServerState",
    "UnparsableRequest", "explain", "lint", "parse_change", "preview",
]
