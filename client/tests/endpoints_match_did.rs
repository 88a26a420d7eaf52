//! The client wraps exactly the endpoints of `candid/deployer.did`, each with the `.did`'s mode
//! and Candid types: a method added to the interface without a client method fails here, and so
//! does a client method whose argument or reply type disagrees with the file.

use candid::types::subtype::equal;
use candid::types::{Type, TypeInner};
use candid_parser::utils::CandidSource;
use deployer_client::ENDPOINTS;
use std::path::PathBuf;

fn did_service() -> (candid::types::TypeEnv, Vec<(String, Type)>) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../candid/deployer.did");
    let (env, service) = CandidSource::File(&path)
        .load()
        .expect("the did file parses");
    let service = service.expect("the did file has a service");
    let methods = env
        .as_service(&service)
        .expect("a service type")
        .iter()
        .map(|(name, ty)| (name.to_string(), ty.clone()))
        .collect();
    (env, methods)
}

#[test]
fn every_did_method_has_exactly_one_client_method() {
    let (_, methods) = did_service();
    let mut did_names: Vec<&str> = methods.iter().map(|(name, _)| name.as_str()).collect();
    let mut client_names: Vec<&str> = ENDPOINTS.iter().map(|endpoint| endpoint.name).collect();
    did_names.sort_unstable();
    client_names.sort_unstable();
    assert_eq!(client_names, did_names);
}

#[test]
fn every_client_method_has_the_did_mode_and_types() {
    let (mut env, methods) = did_service();
    for endpoint in ENDPOINTS {
        let (_, did_type) = methods
            .iter()
            .find(|(name, _)| name == endpoint.name)
            .unwrap_or_else(|| panic!("{} is not in the did file", endpoint.name));
        let TypeInner::Func(function) = did_type.as_ref() else {
            panic!("{} is not a function in the did file", endpoint.name);
        };
        assert_eq!(
            function.is_query(),
            endpoint.query,
            "{}: query in one and update in the other",
            endpoint.name
        );
        let (client_env, args, reply) = (endpoint.types)();
        assert_eq!(
            function.args.len(),
            args.len(),
            "{}: argument count",
            endpoint.name
        );
        assert_eq!(function.rets.len(), 1, "{}: one reply value", endpoint.name);
        let client_types: Vec<Type> = args
            .into_iter()
            .chain([reply])
            .map(|ty| env.merge_type(client_env.clone(), ty))
            .collect();
        for (did, client) in function
            .args
            .iter()
            .chain(&function.rets)
            .zip(&client_types)
        {
            equal(&mut Default::default(), &env, did, client).unwrap_or_else(|error| {
                panic!(
                    "{}: the client's type differs from the did file: {error:?}",
                    endpoint.name
                )
            });
        }
    }
}
