//! Pictures for people: augmentation contact sheets and training curves.

pub mod contact;
pub mod curves;

pub use contact::contact_sheet;
