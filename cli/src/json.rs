//! Any Candid value as JSON, through its Candid type: records keep their field names, variants
//! become `{"Name": value}` (or `"Name"` without a value), blobs and hashes hex, principals
//! text, and nat64 numbers (times are nanoseconds since the epoch, as in the interface).

use candid::types::internal::TypeContainer;
use candid::types::value::{IDLField, IDLValue};
use candid::types::Label;
use candid::{CandidType, IDLArgs};
use serde_json::{Map, Value};

/// `value` as JSON. The value is encoded and decoded with its own type, so this cannot fail.
pub fn to_json<T: CandidType>(value: &T) -> Value {
    let mut container = TypeContainer::new();
    let ty = container.add::<T>();
    let bytes = candid::encode_one(value).expect("a Candid value encodes");
    let args = IDLArgs::from_bytes_with_types(&bytes, &container.env, &[ty])
        .expect("a value decodes with its own type");
    idl_to_json(&args.args[0])
}

fn label(id: &Label) -> String {
    match id {
        Label::Named(name) => name.clone(),
        Label::Id(id) | Label::Unnamed(id) => id.to_string(),
    }
}

fn field_map(fields: &[IDLField]) -> Value {
    let mut map = Map::new();
    for field in fields {
        map.insert(label(&field.id), idl_to_json(&field.val));
    }
    Value::Object(map)
}

fn idl_to_json(value: &IDLValue) -> Value {
    match value {
        IDLValue::Bool(b) => Value::Bool(*b),
        IDLValue::Null | IDLValue::None | IDLValue::Reserved => Value::Null,
        IDLValue::Text(text) => Value::String(text.clone()),
        IDLValue::Number(number) => Value::String(number.clone()),
        IDLValue::Float64(x) => serde_json::json!(x),
        IDLValue::Float32(x) => serde_json::json!(x),
        IDLValue::Opt(inner) => idl_to_json(inner),
        IDLValue::Vec(items) => {
            if !items.is_empty() && items.iter().all(|item| matches!(item, IDLValue::Nat8(_))) {
                let bytes: Vec<u8> = items
                    .iter()
                    .map(|item| match item {
                        IDLValue::Nat8(byte) => *byte,
                        _ => unreachable!(),
                    })
                    .collect();
                Value::String(hex::encode(bytes))
            } else {
                Value::Array(items.iter().map(idl_to_json).collect())
            }
        }
        IDLValue::Blob(bytes) => Value::String(hex::encode(bytes)),
        IDLValue::Record(fields) => field_map(fields),
        IDLValue::Variant(variant) => {
            let field = &variant.0;
            match &field.val {
                IDLValue::Null => Value::String(label(&field.id)),
                inner => {
                    let mut map = Map::new();
                    map.insert(label(&field.id), idl_to_json(inner));
                    Value::Object(map)
                }
            }
        }
        IDLValue::Principal(id) | IDLValue::Service(id) => Value::String(id.to_text()),
        IDLValue::Func(id, method) => Value::String(format!("{id}.{method}")),
        IDLValue::Int(int) => number(int.to_string()),
        IDLValue::Nat(nat) => number(nat.to_string().replace('_', "")),
        IDLValue::Nat16(x) => (*x).into(),
        IDLValue::Nat8(x) => (*x).into(),
        IDLValue::Nat32(x) => (*x).into(),
        IDLValue::Nat64(x) => (*x).into(),
        IDLValue::Int8(x) => (*x).into(),
        IDLValue::Int16(x) => (*x).into(),
        IDLValue::Int32(x) => (*x).into(),
        IDLValue::Int64(x) => (*x).into(),
    }
}

/// A number that fits JSON stays a number; a larger one becomes a string.
fn number(text: String) -> Value {
    match text.parse::<u64>() {
        Ok(n) => n.into(),
        Err(_) => Value::String(text),
    }
}

/// The variant name of a JSON'd variant: `"Name"` or `{"Name": ...}`.
pub fn variant_name(value: &Value) -> String {
    match value {
        Value::String(name) => name.clone(),
        Value::Object(map) => map.keys().next().cloned().unwrap_or_default(),
        other => other.to_string(),
    }
}

/// Compact JSON of a variant, for one-line human output: `Name` or `Name {..}`.
pub fn brief(value: &Value) -> String {
    match value {
        Value::String(name) => name.clone(),
        Value::Object(map) if map.len() == 1 => {
            let (name, inner) = map.iter().next().expect("one entry");
            format!("{name} {inner}")
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candid::Principal;
    use deployer::{ReleaseSelector, Role, RolloutPhase};
    use serde_bytes::ByteBuf;

    #[test]
    fn candid_values_become_json_with_names_hex_and_text() {
        assert_eq!(to_json(&Role::Viewer), Value::String("Viewer".into()));
        assert_eq!(
            to_json(&ReleaseSelector::Sha256(ByteBuf::from(vec![0xab, 0x01]))),
            serde_json::json!({"Sha256": "ab01"})
        );
        assert_eq!(
            to_json(&Principal::anonymous()),
            Value::String("2vxsx-fae".into())
        );
        assert_eq!(
            to_json(&Some(7u64)),
            serde_json::json!(7),
            "an opt is its value"
        );
        assert_eq!(variant_name(&to_json(&RolloutPhase::Running)), "Running");
        assert_eq!(
            brief(&serde_json::json!({"Paused": "Operator"})),
            "Paused \"Operator\""
        );
    }
}
