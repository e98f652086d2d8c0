use serde_json::json;

use super::*;
use PermissionLevel::{Admin, Read, Write};

fn perms(pairs: &[(&str, PermissionLevel)]) -> Permissions {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

fn names(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn globs_match_literally_and_ignore_case() {
    assert!(glob_matches("lib", "lib"));
    assert!(glob_matches("HelpLinkGenerator", "helplinkgenerator"));
    assert!(!glob_matches("lib", "libs"));
    assert!(!glob_matches("lib", "li"));
    assert!(!glob_matches("lib", ""));
}

#[test]
fn a_star_matches_any_run_including_none() {
    assert!(glob_matches("app-*", "app-"));
    assert!(glob_matches("app-*", "app-web"));
    assert!(glob_matches("APP-*", "app-Web"));
    assert!(glob_matches("*", "anything"));
    assert!(glob_matches("*", ""));
    assert!(glob_matches("*-svc", "billing-svc"));
    assert!(glob_matches("a*b*c", "a-x-b-y-b-c"));
    assert!(!glob_matches("app-*", "ap-web"));
    assert!(!glob_matches("*-svc", "billing-svc2"));
    assert!(!glob_matches("a*b*c", "a-x-b-y"));
}

#[test]
fn a_question_mark_matches_exactly_one_character() {
    assert!(glob_matches("lib?", "lib1"));
    assert!(!glob_matches("lib?", "lib"));
    assert!(!glob_matches("lib?", "lib12"));
    assert!(glob_matches("?*", "x"));
    assert!(!glob_matches("?*", ""));
}

#[test]
fn every_repository_is_allowed_without_a_ceiling() {
    let requested = names(&["anything", "else"]);
    assert!(refused_repositories(&requested, None).is_empty());
    assert_eq!(check_repositories(&requested, None), Ok(()));
}

#[test]
fn repositories_outside_the_allowed_patterns_are_refused_in_request_order() {
    let requested = names(&["app-web", "lib-y", "lib", "app-x", "other"]);
    let allowed = names(&["app-w*", "lib"]);
    assert_eq!(
        refused_repositories(&requested, Some(&allowed)),
        ["lib-y", "app-x", "other"]
    );
}

#[test]
fn refused_repositories_are_named_with_the_field_and_the_ceiling() {
    let requested = names(&["app-web", "lib-y", "bin"]);
    let allowed = names(&["app-*", "lib"]);
    let err = check_repositories(&requested, Some(&allowed)).unwrap_err();
    assert_eq!(err.reason(), "RepositoryNotAllowed");
    assert_eq!(
        err.to_string(),
        "spec.github.repositories: lib-y, bin are outside the connection's allowedRepositories"
    );
    let one = check_repositories(&names(&["bin"]), Some(&allowed)).unwrap_err();
    assert!(one.to_string().contains("bin is outside"), "{one}");
}

#[test]
fn no_request_and_no_ceiling_leaves_the_installation_permissions() {
    assert_eq!(effective_permissions(None, None), Ok(None));
    assert_eq!(
        effective_permissions(Some(&Permissions::new()), None),
        Ok(None)
    );
}

#[test]
fn no_request_under_a_ceiling_asks_for_the_ceiling() {
    let ceiling = perms(&[("contents", Write), ("pull_requests", Read)]);
    assert_eq!(
        effective_permissions(None, Some(&ceiling)),
        Ok(Some(ceiling.clone()))
    );
    assert_eq!(
        effective_permissions(Some(&Permissions::new()), Some(&ceiling)),
        Ok(Some(ceiling.clone()))
    );
}

#[test]
fn a_request_without_a_ceiling_is_asked_as_is() {
    let request = perms(&[("contents", Admin)]);
    assert_eq!(
        effective_permissions(Some(&request), None),
        Ok(Some(request.clone()))
    );
}

#[test]
fn a_request_below_or_equal_to_the_ceiling_is_asked_as_is() {
    let ceiling = perms(&[("contents", Write), ("issues", Write)]);
    let request = perms(&[("contents", Write), ("issues", Read)]);
    assert_eq!(
        effective_permissions(Some(&request), Some(&ceiling)),
        Ok(Some(request.clone()))
    );
}

#[test]
fn a_request_above_the_ceiling_is_refused_not_lowered() {
    let ceiling = perms(&[("contents", Write)]);
    let request = perms(&[("contents", Admin)]);
    let err = effective_permissions(Some(&request), Some(&ceiling)).unwrap_err();
    assert_eq!(
        err,
        ScopeError::PermissionsAboveCeiling {
            above: vec![("contents".into(), Admin, Some(Write))]
        }
    );
    assert_eq!(err.reason(), "PermissionNotAllowed");
    assert_eq!(
        err.to_string(),
        "spec.github.permissions: contents: admin is above the connection's maxPermissions (contents: write)"
    );
}

#[test]
fn a_permission_absent_from_the_ceiling_is_refused() {
    let ceiling = perms(&[("contents", Write)]);
    let request = perms(&[("contents", Read), ("issues", Write), ("actions", Read)]);
    let err = effective_permissions(Some(&request), Some(&ceiling)).unwrap_err();
    assert_eq!(
        err,
        ScopeError::PermissionsAboveCeiling {
            above: vec![
                ("actions".into(), Read, None),
                ("issues".into(), Write, None)
            ]
        }
    );
    assert_eq!(
        err.to_string(),
        "spec.github.permissions: actions: read is not among the connection's maxPermissions; \
         issues: write is not among the connection's maxPermissions"
    );
}

#[test]
fn an_empty_ceiling_refuses_every_requested_permission() {
    let request = perms(&[("contents", Read)]);
    let err = effective_permissions(Some(&request), Some(&Permissions::new())).unwrap_err();
    assert_eq!(err.reason(), "PermissionNotAllowed");
}

#[test]
fn the_highest_true_flag_from_github_wins() {
    let all = json!({"admin": true, "maintain": true, "push": true, "triage": true, "pull": true});
    assert_eq!(role_from_github(&all), Some(UserRole::Admin));
    let maintain = json!({"admin": false, "maintain": true, "push": true, "pull": true});
    assert_eq!(role_from_github(&maintain), Some(UserRole::Maintain));
    let push = json!({"admin": false, "push": true, "pull": true});
    assert_eq!(role_from_github(&push), Some(UserRole::Write));
    let triage = json!({"triage": true, "pull": true});
    assert_eq!(role_from_github(&triage), Some(UserRole::Triage));
    assert_eq!(
        role_from_github(&json!({"pull": true})),
        Some(UserRole::Read)
    );
}

#[test]
fn no_true_flag_means_no_role() {
    let none =
        json!({"admin": false, "maintain": false, "push": false, "triage": false, "pull": false});
    assert_eq!(role_from_github(&none), None);
    assert_eq!(role_from_github(&json!({})), None);
    assert_eq!(role_from_github(&serde_json::Value::Null), None);
    assert_eq!(role_from_github(&json!({"admin": "yes"})), None);
}

#[test]
fn roles_map_to_permission_levels_as_documented() {
    let table = [
        (UserRole::Admin, Admin),
        (UserRole::Maintain, Write),
        (UserRole::Write, Write),
        (UserRole::Triage, Read),
        (UserRole::Read, Read),
    ];
    for (role, level) in table {
        assert_eq!(role_ceiling(role), level, "{role:?}");
    }
}

#[test]
fn permissions_are_lowered_to_the_least_role_across_repositories() {
    let asked = perms(&[("contents", Write), ("issues", Admin), ("metadata", Read)]);
    let roles = vec![
        ("app".to_string(), Some(UserRole::Admin)),
        ("lib".to_string(), Some(UserRole::Triage)),
        ("web".to_string(), Some(UserRole::Maintain)),
    ];
    assert_eq!(
        lower_to_user(&asked, &roles),
        Ok(perms(&[
            ("contents", Read),
            ("issues", Read),
            ("metadata", Read)
        ]))
    );
}

#[test]
fn permissions_within_the_users_role_are_kept() {
    let asked = perms(&[("contents", Write), ("issues", Admin), ("metadata", Read)]);
    let roles = vec![
        ("app".to_string(), Some(UserRole::Write)),
        ("lib".to_string(), Some(UserRole::Maintain)),
    ];
    assert_eq!(
        lower_to_user(&asked, &roles),
        Ok(perms(&[
            ("contents", Write),
            ("issues", Write),
            ("metadata", Read)
        ]))
    );
    let admin = vec![("app".to_string(), Some(UserRole::Admin))];
    assert_eq!(lower_to_user(&asked, &admin), Ok(asked.clone()));
}

#[test]
fn a_repository_the_user_cannot_access_refuses_the_token() {
    let asked = perms(&[("contents", Read)]);
    let roles = vec![
        ("app".to_string(), None),
        ("lib".to_string(), Some(UserRole::Admin)),
        ("web".to_string(), None),
    ];
    let err = lower_to_user(&asked, &roles).unwrap_err();
    assert_eq!(
        err,
        ScopeError::UserLacksAccess {
            repositories: names(&["app", "web"])
        }
    );
    assert_eq!(err.reason(), "UserLacksAccess");
    assert_eq!(
        err.to_string(),
        "spec.github.userToken: the user has no access to app, web"
    );
}
