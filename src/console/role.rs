//! Who may do what in the console. Three roles: `admin` (everything, and inviting people),
//! `marketing` (sees everything, changes leads, cannot invite or change config), `sales`
//! (sees and acts on their own leads only). Every lead owner is a `sales` user without
//! being invited; an invitation's role wins over that.

use std::fmt;

/// A console user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Marketing,
    Sales,
}

/// What a page or action needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Overview, campaigns, every lead (marketing and admin).
    SeeAll,
    /// Actions on leads (recycle, won, out of scope, pause, reassign, suppression); a sales
    /// user may act on their own leads only (check `Viewer::sees_owner` as well).
    ChangeLeads,
    /// Forget a lead (erase personal data): admin only.
    Forget,
    /// Invite people and change roles: admin only.
    Invite,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Admin, Role::Marketing, Role::Sales];

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s.trim())
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Marketing => "marketing",
            Role::Sales => "sales",
        }
    }

    pub fn can(self, permission: Permission) -> bool {
        match permission {
            Permission::SeeAll => matches!(self, Role::Admin | Role::Marketing),
            Permission::ChangeLeads => true,
            Permission::Forget | Permission::Invite => self == Role::Admin,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_admins_invite_and_only_sales_are_limited_to_their_leads() {
        assert!(Role::Admin.can(Permission::Invite));
        assert!(!Role::Marketing.can(Permission::Invite));
        assert!(Role::Marketing.can(Permission::SeeAll));
        assert!(!Role::Sales.can(Permission::SeeAll));
        assert_eq!(Role::parse(" sales"), Some(Role::Sales));
        assert_eq!(Role::parse("root"), None);
    }
}
