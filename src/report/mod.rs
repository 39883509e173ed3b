//! Pictures for people: augmentation contact sheets and training curves.

pub mod contact;

pub use contact::contact_sheet;
