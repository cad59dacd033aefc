//! The `settings!` macro: each setting is declared once — its key, type, default, help text and
//! check — and the macro derives from that one declaration the settings struct, its defaults, the
//! command-line flags (`--key-name`, with the environment variable and default in their help), the
//! `NEXERO_*` environment names, and the validation.

use figment::value::Value;

/// What the configuration layers know about one setting.
pub struct Spec {
    /// The `nexero.toml` path: `port`, or `sync.url` inside a `[sync]` section.
    pub key: &'static str,
    pub secret: bool,
}

impl Spec {
    /// `--sync-url` for `sync.url`.
    pub fn flag(&self) -> String {
        format!("--{}", flag_name(self.key))
    }

    /// `NEXERO_SYNC_URL` for `sync.url`.
    pub fn env(&self) -> String {
        env_name(self.key)
    }
}

pub fn flag_name(key: &str) -> String {
    key.replace(['.', '_'], "-")
}

pub fn env_name(key: &str) -> String {
    format!("{}{}", super::ENV_PREFIX, key.replace('.', "_").to_uppercase())
}

/// One value given on the command line.
pub struct Given {
    pub spec: &'static Spec,
    pub value: Value,
    /// The value as typed, for writing it back onto a service's command line.
    pub text: String,
}

/// The help line of a flag: its description, environment variable and default.
pub fn help(doc: &str, key: &str, default: &str) -> String {
    format!("{} [env: {}] [default: {default}]", doc.trim(), env_name(key))
}

/// How a value reads in help texts and messages.
pub trait Shown {
    /// Secrets are never shown, logged or put on a command line.
    const SECRET: bool = false;
    fn shown(&self) -> String;
}

macro_rules! shown_by_display {
    ($($t:ty),*) => { $(impl Shown for $t { fn shown(&self) -> String { self.to_string() } })* };
}
shown_by_display!(u16, u64, usize, bool, std::net::IpAddr);

impl Shown for super::Secret {
    const SECRET: bool = true;
    fn shown(&self) -> String {
        self.to_string()
    }
}

impl Shown for String {
    fn shown(&self) -> String {
        if self.is_empty() { "none".into() } else { self.clone() }
    }
}

impl Shown for std::path::PathBuf {
    fn shown(&self) -> String {
        self.display().to_string()
    }
}

/// How a command-line value enters the figment layers.
pub trait Layered {
    fn layered(&self) -> Value;
}

macro_rules! layered_by_serialize {
    ($($t:ty),*) => { $(impl Layered for $t {
        fn layered(&self) -> Value { Value::serialize(self).expect("a setting serializes") }
    })* };
}
layered_by_serialize!(u16, u64, usize, bool, String, std::net::IpAddr, std::path::PathBuf);

impl Layered for super::Secret {
    fn layered(&self) -> Value {
        Value::from(self.expose().to_owned())
    }
}

/// Declares a group of settings: a struct (the whole file's top level, or one `[section]`), its
/// command-line overrides and its specs. See `settings.rs`.
macro_rules! settings {
    (
        $(#[doc = $struct_doc:literal])*
        $Settings:ident, $Overrides:ident, section $section:literal {
            $(
                $(#[doc = $doc:literal])+
                $name:ident: $ty:ty = $default:expr, $value_name:literal
                    $(, check |$v:ident| $check:expr)?;
            )*
        }
        $(nested { $($sub:ident: $SubSettings:ident / $SubOverrides:ident),* })?
    ) => {
        $(#[doc = $struct_doc])*
        #[derive(Clone, Debug, serde::Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct $Settings {
            $( $(#[doc = $doc])+ pub $name: $ty, )*
            $($( pub $sub: $SubSettings, )*)?
        }

        impl Default for $Settings {
            fn default() -> Self {
                $Settings { $( $name: $default, )* $($( $sub: $SubSettings::default(), )*)? }
            }
        }

        /// Values given on the command line; `None` leaves the lower layers in force.
        #[derive(Clone, Debug, Default, clap::Args)]
        pub struct $Overrides {
            $(
                #[arg(
                    long = $crate::config::declare::flag_name(concat!($section, stringify!($name))),
                    value_name = $value_name,
                    help = $crate::config::declare::help(
                        concat!($($doc),+), concat!($section, stringify!($name)),
                        &$crate::config::declare::Shown::shown(&$Settings::default().$name)),
                )]
                pub $name: Option<$ty>,
            )*
            $($( #[command(flatten)] pub $sub: $SubOverrides, )*)?
        }

        impl $Settings {
            /// Every setting of this group (and its sections), as the layers see them.
            pub fn specs() -> Vec<&'static $crate::config::declare::Spec> {
                #[allow(unused_mut)]
                let mut specs: Vec<&'static $crate::config::declare::Spec> = vec![$(
                    {
                        const SPEC: $crate::config::declare::Spec = $crate::config::declare::Spec {
                            key: concat!($section, stringify!($name)),
                            secret: <$ty as $crate::config::declare::Shown>::SECRET,
                        };
                        &SPEC
                    },
                )*];
                $($( specs.extend($SubSettings::specs()); )*)?
                specs
            }

            /// Each setting's default, as shown in help and messages.
            pub fn defaults() -> Vec<(&'static str, String)> {
                let defaults = $Settings::default();
                #[allow(unused_mut)]
                let mut shown = vec![$( (concat!($section, stringify!($name)), $crate::config::declare::Shown::shown(&defaults.$name)), )*];
                $($( shown.extend($SubSettings::defaults()); )*)?
                shown
            }

            /// Applies each declared check; the message names the setting, why, and the default.
            pub(crate) fn check(&self) -> Result<(), (&'static str, String)> {
                $($(
                    let $v = &self.$name;
                    if let Err(reason) = $check {
                        return Err((concat!($section, stringify!($name)), format!(
                            "{} = {}: {reason} (default {})",
                            concat!($section, stringify!($name)),
                            $crate::config::declare::Shown::shown($v),
                            $crate::config::declare::Shown::shown(&$Settings::default().$name),
                        )));
                    }
                )?)*
                $($( self.$sub.check()?; )*)?
                Ok(())
            }
        }

        impl $Overrides {
            /// The values given, each with its spec.
            pub fn given(&self) -> Vec<$crate::config::declare::Given> {
                let specs = $Settings::specs();
                #[allow(unused_mut)]
                let mut given = Vec::new();
                $(
                    if let Some(value) = &self.$name {
                        let key = concat!($section, stringify!($name));
                        given.push($crate::config::declare::Given {
                            spec: specs.iter().copied().find(|s| s.key == key).expect("declared"),
                            value: $crate::config::declare::Layered::layered(value),
                            text: $crate::config::declare::Layered::layered(value).into_string()
                                .unwrap_or_else(|| $crate::config::declare::Shown::shown(value)),
                        });
                    }
                )*
                $($( given.extend(self.$sub.given()); )*)?
                given
            }
        }
    };
}

pub(crate) use settings;
