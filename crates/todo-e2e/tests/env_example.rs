//! `.env.example` lists every setting the services read: a setting added to
//! either service's configuration without a line there fails this test.

use clap::CommandFactory;

fn env_names(cmd: clap::Command) -> Vec<String> {
    cmd.get_arguments()
        .filter_map(|a| a.get_env())
        .map(|e| e.to_string_lossy().into_owned())
        .collect()
}

#[test]
fn env_example_names_every_setting_of_both_services() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let example = std::fs::read_to_string(root.join(".env.example")).unwrap();
    let listed = |name: &str| {
        example.lines().any(|l| {
            let l = l.trim_start_matches('#');
            l.split_once('=').is_some_and(|(k, _)| k == name)
        })
    };
    let mut names = env_names(todo_backend::Config::command());
    names.extend(env_names(todo_event_service::Config::command()));
    assert!(names.len() > 40, "found only {names:?}");

    let missing: Vec<&String> = names.iter().filter(|n| !listed(n)).collect();

    assert!(
        missing.is_empty(),
        ".env.example lacks {missing:?}: add each with its default and a line on what it does"
    );
}
